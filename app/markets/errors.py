"""Error codes of markets, stalls, merchants, claims and feedback."""
from app.core.errors import register_codes, register_path_objects

register_codes({
    "STALL_NOT_HELD": (409, "该摊位当前没有确认的经营者，无需解除"),
    "STALL_NOT_FOUND": (404, "摊位不存在"),
    "STALL_TOKEN_VOID": (410, "此二维码已作废"),
    "STALL_NUMBER_DUPLICATE": (422, "摊位号重复，请检查后重新提交"),
    "STALL_NUMBER_EXISTS": (409, "部分摊位号在本市场已存在"),
    "TOO_MANY_STALLS": (422, "一次最多创建 500 个摊位"),
    "MERCHANT_NOT_FOUND": (404, "经营主体不存在"),
    "MERCHANT_EXISTS": (409, "您已登记过该统一社会信用代码的经营主体"),
    "USCC_INVALID": (422, "统一社会信用代码不正确，请核对营业执照"),
    "STALL_CLAIM_PENDING": (409, "该摊位已有待审核的认领申请"),
    "STALL_ALREADY_CLAIMED": (409, "该摊位已由其他经营户认领"),
    "STALL_CLAIM_NOT_PENDING": (409, "该摊位没有待审核的认领申请"),
    "REASON_REQUIRED": (422, "请填写原因"),
    "FEEDBACK_NOT_FOUND": (404, "反映的问题不存在"),
    "FEEDBACK_ALREADY_REVIEWED": (409, "该问题已处理"),
    "FEEDBACK_RATE_LIMITED": (429, "反映问题过于频繁，请稍后再试"),
    "WXACODE_UNAVAILABLE": (503, "小程序码暂时无法生成，请稍后重试"),
})

register_path_objects({'token': 'STALL_NOT_FOUND', 'merchant_id': 'MERCHANT_NOT_FOUND', 'feedback_id': 'FEEDBACK_NOT_FOUND'})
