"""Error codes of credentials and photo uploads."""
from app.core.errors import register_codes, register_path_objects

register_codes({
    "CREDENTIAL_NOT_FOUND": (404, "证照不存在"),
    "CREDENTIAL_ALREADY_REVIEWED": (409, "该证照已审核"),
    "CREDENTIAL_VALIDITY_INVALID": (422, "请填写有效期截止日期，或选择“长期”"),
    "CREDENTIAL_EXPIRED": (422, "证照已过期，请上传换发后的新证照"),
    "CREDENTIAL_NOT_VERIFIED": (409, "只能撤销已审核通过的证照"),
    "LICENCE_USCC_MISMATCH": (422, "营业执照上的统一社会信用代码与经营主体不一致"),
    "PHOTO_REQUIRED": (422, "请上传证照照片"),
})

register_path_objects({'credential_id': 'CREDENTIAL_NOT_FOUND'})
