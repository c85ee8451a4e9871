"""Licences and permits (亮照亮证): upload with a photo, review, photos."""
import io

from flask import send_file
from flask_smorest.fields import Upload
from marshmallow import Schema, fields, validate

from app.identity.auth import current_user, requires
from app.core.idempotency import idempotent
from app.core.storage import MAX_PHOTO_BYTES, read_limited
from app.core.pagination import PageArgs, page_schema
from app.credentials import services
from app.worklists import markets as worklists
from app.credentials.models import CREDENTIAL_KINDS
from miniprogram_api.common import BEARER, Person, Blueprint, Bool, FormDate, Int, LocalDateTime, QueryBool, ReasonSchema, text

blp = Blueprint("credentials", __name__, description="亮照亮证")


class CredentialFormSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(list(CREDENTIAL_KINDS)),
                         metadata={"description": "business_licence 营业执照；food_business 食品经营许可证；…"})
    number = text(64, metadata={"description": "证照编号（营业执照为统一社会信用代码）"})
    issuer = text(100, metadata={"description": "发证机关"})
    valid_from = FormDate()
    valid_until = FormDate(metadata={"description": "有效期至（长期则不填）"})
    long_term = QueryBool(load_default=False, metadata={"description": "长期有效"})


class CredentialUploadSchema(CredentialFormSchema):
    """The whole multipart body: the document's fields and its photo."""
    photo = Upload(required=True, metadata={"description": "证照照片，JPEG 或 PNG，不超过 5 MB"})


class CredentialSchema(Schema):
    id = Int(required=True)
    merchant_id = Int(required=True)
    kind = fields.String(required=True)
    label = fields.String(required=True)
    number = fields.String(required=True)
    issuer = fields.String(required=True)
    valid_from = fields.Date(allow_none=True)
    valid_until = fields.Date(allow_none=True)
    long_term = Bool(required=True)
    status = fields.String(required=True, metadata={"description": "pending 待审核 | verified 已通过 | rejected 未通过 | "
                                                                   "revoked 已撤销"})
    review_reason = fields.String(allow_none=True)
    reviewed_at = LocalDateTime(allow_none=True)
    created_at = LocalDateTime()
    submitted_by = Person("submitted_by_id", metadata={"description": "上传人：姓名与脱敏手机号"})
    photo_url = fields.Function(lambda c: f"/api/v1/credentials/{c.id}/photo")


class SubmittedCredentialSchema(CredentialSchema):
    warning = fields.Function(lambda c: getattr(c, "warning", None), allow_none=True, metadata={
        "description": "30 天内到期时的提醒 {code: CREDENTIAL_EXPIRING_SOON, days_left, message}；否则为 null"})


class CredentialQueueArgs(PageArgs):
    status = fields.String(load_default="pending", validate=validate.OneOf(["pending", "verified", "rejected", "revoked"]),
                           metadata={"description": "pending 待审核（默认，最早上传的在前）/ verified / rejected / revoked"})


class QueueMerchantSchema(Schema):
    id = Int(required=True)
    name = fields.String(required=True)
    stall_numbers = fields.List(fields.String(), required=True, metadata={"description": "在本市场的摊位号"})


class QueuedCredentialSchema(CredentialSchema):
    merchant = fields.Nested(QueueMerchantSchema, attribute="merchant_ref", required=True)


class CredentialReviewSchema(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(["approve", "reject"]))
    reason = fields.String(load_default=None, validate=validate.Length(max=500),
                           metadata={"description": "原因；驳回时必填"})


class PhotoArgs(Schema):
    thumb = QueryBool(load_default=False)


@blp.route("/merchants/<int:merchant_id>/credentials", methods=["POST"])
@idempotent
@blp.arguments(CredentialUploadSchema, location="form_and_files")
@blp.response(201, SubmittedCredentialSchema)
@blp.doc(security=BEARER)
@requires()
def submit(data, merchant_id):
    """上传营业执照或许可证（multipart，含照片；支持 Idempotency-Key）"""
    photo = read_limited(data.pop("photo").stream, MAX_PHOTO_BYTES)
    return services.submit_credential(current_user(), merchant_id, data, photo)


@blp.route("/markets/<int:market_id>/credentials", methods=["GET"])
@blp.arguments(CredentialQueueArgs, location="query")
@blp.response(200, page_schema(QueuedCredentialSchema))
@blp.doc(security=BEARER)
@requires("market_manager", "regulator")
def credential_queue(args, market_id):
    """证照审核待办：本市场摊位经营主体（含认领中的）上传的证照，待审核的最早上传的在前"""
    return worklists.credential_queue(current_user(), market_id, args["status"], args["page"], args["per_page"])


@blp.route("/merchants/<int:merchant_id>/credentials", methods=["GET"])
@blp.response(200, CredentialSchema(many=True))
@blp.doc(security=BEARER)
@requires()
def list_credentials(merchant_id):
    """经营主体的证照（本人，或其摊位所在市场的管理方、辖区监管人员）"""
    return services.list_credentials(current_user(), merchant_id)


@blp.route("/credentials/<int:credential_id>/review", methods=["POST"])
@blp.arguments(CredentialReviewSchema)
@blp.response(200, CredentialSchema)
@blp.doc(security=BEARER)
@requires("market_manager", "regulator")
def review(data, credential_id):
    """审核证照：通过（approve）或驳回（reject，须填写原因）；记入审计日志"""
    return services.review_credential(current_user(), credential_id, data["decision"], data["reason"])


@blp.route("/credentials/<int:credential_id>/revoke", methods=["POST"])
@blp.arguments(ReasonSchema)
@blp.response(200, CredentialSchema)
@blp.doc(security=BEARER)
@requires("market_manager", "regulator")
def revoke(data, credential_id):
    """撤销已审核通过的证照（须填写原因）：亮照页立即不再公示，经营者收到通知；记入审计日志"""
    return services.revoke_credential(current_user(), credential_id, data["reason"])


@blp.route("/credentials/<int:credential_id>/photo", methods=["GET"])
@blp.arguments(PhotoArgs, location="query")
@blp.doc(security=BEARER, responses={200: {"description": "JPEG", "content": {"image/jpeg": {}}}})
@requires()
def photo(args, credential_id):
    """证照照片（本人、管理方、监管人员）"""
    response = _send_photo(services.credential_photo(current_user(), credential_id, args["thumb"]), max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@blp.route("/public/stalls/<token>/photos/<photo_key>.jpg", methods=["GET"])
@blp.arguments(PhotoArgs, location="query")
@blp.doc(responses={200: {"description": "JPEG", "content": {"image/jpeg": {}}}})
def public_photo(args, token, photo_key):
    """摊位已核验证照的照片（公示页使用，地址不可猜测）"""
    response = _send_photo(services.public_photo(token, photo_key, args["thumb"]), max_age=300)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _send_photo(photo, max_age: int):
    """A local file is sent as it always was (send_file derives ETag and Last-Modified from the
    file); bytes from the object store carry the store's ETag and time, the same on every host,
    so If-None-Match and If-Modified-Since answer 304 alike."""
    if photo.path is not None:
        return send_file(photo.path, mimetype="image/jpeg", max_age=max_age)
    return send_file(io.BytesIO(photo.data), mimetype="image/jpeg", max_age=max_age, etag=photo.etag or False,
                     last_modified=photo.last_modified)
