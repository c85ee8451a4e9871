"""Stalls: sticker codes, token reissue, claims, trading rules, the public badge and feedback."""
from flask import Response, current_app, request
from marshmallow import Schema, fields, validate

from app.identity.auth import current_user, requires
from app.core.errors import APIError
from app.core.transactions import transactional
from app.badge import cache as badge_cache
from app.markets import services
from app.markets.models import FEEDBACK_CATEGORIES
from miniprogram_api.common import BEARER, Blueprint, Bool, Int, LocalDateTime, PatchSchema, ReasonSchema, text
from miniprogram_api.markets import FeedbackItemSchema, stall_number_rule

blp = Blueprint("stalls", __name__, description="摊位、二维码与公示")


class StallSchema(Schema):
    id = Int(required=True)
    number = fields.String(required=True)
    token = fields.String(required=True)
    market_id = Int(required=True)
    token_issued_at = LocalDateTime(allow_none=True)


class ManagedStallSchema(StallSchema):
    note = fields.String(allow_none=True, metadata={"description": "管理方备注（不公开）"})
    closed = fields.Function(lambda s: s.closed_at is not None, metadata={"description": "是否已停用"})


class StallUpdateSchema(PatchSchema):
    number = fields.String(validate=stall_number_rule())
    note = text(services.STALL_NOTE_MAX, required=False, allow_none=True,
                metadata={"description": "管理方备注（不公开）"})
    closed = Bool(metadata={"description": "true 停用摊位，false 恢复"})


class QrArgs(Schema):
    kind = fields.String(load_default="url", validate=validate.OneOf(["url", "wxacode"]),
                         metadata={"description": "url：普通二维码（任意相机可扫）；wxacode：小程序码"})


class ClaimSchema(Schema):
    merchant_id = Int(required=True, metadata={"description": "认领摊位的经营主体（须为本人创建）"})


class ClaimOutSchema(Schema):
    id = Int(required=True)
    stall_id = Int(required=True)
    merchant_id = Int(required=True)
    status = fields.String(required=True, metadata={"description": "pending 待确认 | confirmed 已确认 | rejected 未通过 | "
                                                                   "released 已解除"})
    created_at = LocalDateTime()
    reviewed_at = LocalDateTime(allow_none=True)
    review_reason = fields.String(allow_none=True)
    released_at = LocalDateTime(allow_none=True)
    release_reason = fields.String(allow_none=True)


class ClaimReviewSchema(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(["approve", "reject"]))
    reason = fields.String(load_default=None, validate=validate.Length(max=500),
                           metadata={"description": "原因；驳回时必填"})


class RulesSchema(Schema):
    returns = text(200, required=False, load_default=None, metadata={"description": "退换货规则"})
    pricing = text(200, required=False, load_default=None, metadata={"description": "明码标价规则"})
    weighing = text(200, required=False, load_default=None, metadata={"description": "计量（公平秤）规则"})


class RulesOutSchema(Schema):
    token = fields.String(required=True)
    trading_rules = fields.Dict(allow_none=True)


class FeedbackSchema(Schema):
    category = fields.String(required=True, validate=validate.OneOf(FEEDBACK_CATEGORIES))
    text = text(500)


class FeedbackOutSchema(Schema):
    id = Int(required=True)
    category = fields.String(required=True)
    status = fields.String(required=True)
    created_at = LocalDateTime()


class FeedbackReviewSchema(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(["uphold", "dismiss"]))
    reason = fields.String(load_default=None, validate=validate.Length(max=500),
                           metadata={"description": "原因；不予采纳时必填"})


# The public badge (documented; served as pre-serialised bytes, see app/markets/badge_cache).
class BadgeDocumentSchema(Schema):
    kind = fields.String(required=True)
    label = fields.String(required=True)
    number = fields.String(required=True)
    issuer = fields.String(required=True)
    valid_from = fields.String(allow_none=True)
    valid_until = fields.String(allow_none=True)
    long_term = Bool(required=True)
    photo_url = fields.String(allow_none=True)


class BadgeItemSchema(Schema):
    key = fields.String(required=True, metadata={"description": "licence | permits | pledge | party_member"})
    label = fields.String(required=True)
    ok = Bool(required=True)
    reason = fields.String(allow_none=True)
    documents = fields.List(fields.Nested(BadgeDocumentSchema))
    detail = fields.Dict(allow_none=True)


class PublicBadgeSchema(Schema):
    stall = fields.Dict(required=True)
    merchant = fields.Dict(allow_none=True)
    verdict = fields.String(required=True, metadata={"description": "放心摊位 | 部分公示 | 未公示"})
    verdict_level = fields.String(required=True, metadata={"description": "good | partial | none"})
    items = fields.List(fields.Nested(BadgeItemSchema), required=True)
    complaints = fields.Dict(required=True)
    reasons = fields.List(fields.String(), required=True)
    trading_rules = fields.Dict(allow_none=True)
    computed_at = fields.String(required=True)
    changes_at = fields.String(allow_none=True, metadata={"description": "下一次状态变化的时间（如证照到期）"})


def _stall_gone(token: str) -> APIError:
    services.stall_by_token(token)  # raises 410 STALL_TOKEN_VOID or 404 STALL_NOT_FOUND
    return APIError(code="STALL_NOT_FOUND")


@blp.route("/public/stalls/<token>", methods=["GET"])
@blp.alt_response(200, schema=PublicBadgeSchema, success=True, description="摊位公示信息")
def public_badge(token):
    """摊位公示（亮照、亮证、诚信承诺、共产党员经营户、近期投诉）——无需登录"""
    try:
        status, headers, body = badge_cache.respond("json", token, request.headers.get("If-None-Match"))
    except badge_cache.StallGone:
        raise _stall_gone(token)
    return current_app.response_class(body, status=status, headers=headers)


@blp.route("/public/stalls/<token>/feedback", methods=["POST"])
@blp.arguments(FeedbackSchema)
@blp.response(201, FeedbackOutSchema)
@blp.doc(security=BEARER)
@requires()
def submit_feedback(data, token):
    """消费者反映问题（需登录；内容经微信内容安全检测后才保存）"""
    return services.submit_feedback(current_user(), token, data["category"], data["text"])


@blp.route("/feedback/<int:feedback_id>/review", methods=["POST"])
@blp.arguments(FeedbackReviewSchema)
@blp.response(200, FeedbackItemSchema)
@blp.doc(security=BEARER)
@requires("market_manager", "regulator")
def review_feedback(data, feedback_id):
    """核实（uphold）或不予采纳（dismiss）消费者反映的问题；核实的问题在公示页显示 90 天"""
    return services.review_feedback(current_user(), feedback_id, data["decision"], data["reason"])


@blp.route("/stalls/<token>/qrcode.png", methods=["GET"])
@transactional  # keeps a fetched mini-program code (app.markets.qr.wxacode_png)
@blp.arguments(QrArgs, location="query")
@blp.doc(security=BEARER, responses={200: {"description": "PNG 图片", "content": {"image/png": {}}}})
@requires("market_manager", "regulator")
def qrcode_png(args, token):
    """单个摊位的二维码（普通二维码或小程序码）"""
    from app.markets import qr

    stall, _ = services.manage_stall(current_user(), token)
    png = qr.wxacode_png(stall.token) if args["kind"] == "wxacode" else qr.qr_png(qr.stall_url(stall.token))
    response = Response(png, mimetype="image/png")
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@blp.route("/stalls/<token>", methods=["PATCH"])
@blp.arguments(StallUpdateSchema)
@blp.response(200, ManagedStallSchema)
@blp.doc(security=BEARER)
@requires("market_manager", "regulator")
def update_stall(data, token):
    """修改摊位号、备注，停用或恢复摊位（本市场管理方或辖区监管人员；记入审计日志）"""
    return services.update_stall(current_user(), token, data)


@blp.route("/stalls/<token>/reissue", methods=["POST"])
@blp.response(200, StallSchema)
@blp.doc(security=BEARER)
@requires("market_manager", "regulator")
def reissue(token):
    """重新生成摊位二维码：旧二维码立即作废（记入审计日志）"""
    return services.reissue_token(current_user(), token)


@blp.route("/stalls/<token>/claim", methods=["POST"])
@blp.arguments(ClaimSchema)
@blp.response(201, ClaimOutSchema)
@blp.doc(security=BEARER)
@requires()
def claim(data, token):
    """经营户扫码认领摊位，待市场管理方确认"""
    return services.claim_stall(current_user(), token, data["merchant_id"])


@blp.route("/stalls/<token>/claim/review", methods=["POST"])
@blp.arguments(ClaimReviewSchema)
@blp.response(200, ClaimOutSchema)
@blp.doc(security=BEARER)
@requires("market_manager", "regulator")
def review_claim(data, token):
    """市场管理方确认或驳回摊位认领（驳回须填写原因；记入审计日志）"""
    return services.review_claim(current_user(), token, data["decision"], data["reason"])


@blp.route("/stalls/<token>/release", methods=["POST"])
@blp.arguments(ReasonSchema)
@blp.response(200, ClaimOutSchema)
@blp.doc(security=BEARER)
@requires()
def release(data, token):
    """解除摊位经营关系（退租、转让）：经营者本人或市场管理方/辖区监管人员，须填原因；摊位回到未认领，新经营者可认领"""
    return services.release_stall(current_user(), token, data["reason"])


@blp.route("/stalls/<token>/rules", methods=["PUT"])
@blp.arguments(RulesSchema)
@blp.response(200, RulesOutSchema)
@blp.doc(security=BEARER)
@requires()
def set_rules(data, token):
    """亮规则：退换货、明码标价、计量规则（摊位经营户或市场管理方）"""
    return services.set_trading_rules(current_user(), token, data)
