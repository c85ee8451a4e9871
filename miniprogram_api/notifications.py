from marshmallow import Schema, fields, validate

from app.identity.auth import current_user, requires
from app.core.idempotency import idempotent
from app.core.pagination import PageArgs, page_schema
from app.reminders import consents, inbox
from config import SUBSCRIBE_TEMPLATE_KEYS
from miniprogram_api.common import BEARER, Blueprint, Int, LocalDateTime

blp = Blueprint("notifications", __name__, description="订阅消息授权与消息中心")


class SubscribeSchema(Schema):
    template_keys = fields.List(
        fields.String(validate=validate.OneOf(SUBSCRIBE_TEMPLATE_KEYS)), required=True,
        validate=validate.Length(max=20),
        metadata={"description": "用户在 wx.requestSubscribeMessage 中刚同意的模板："
                                 "credential_expiry 证照到期, pledge_renewal 承诺续签, activity_start 活动开始, "
                                 "branch_duty 支部例行工作, review_digest 待审核汇总, review_result 审核结果",
                  "example": ["credential_expiry", "activity_start"]})


class ConsentSchema(Schema):
    template_key = fields.String(required=True)
    remaining = Int(required=True, metadata={"description": "剩余可发送的订阅消息条数"})


class LedgerSchema(Schema):
    consents = fields.List(fields.Nested(ConsentSchema), required=True)


class NotificationSchema(Schema):
    id = Int(required=True)
    kind = fields.String(required=True)
    title = fields.String(required=True)
    body = fields.String(required=True)
    page = fields.String(allow_none=True, metadata={"description": "点击后打开的小程序页面"})
    read = fields.Function(lambda n: n.read_at is not None, metadata={"type": "boolean"})
    read_at = LocalDateTime(allow_none=True)
    created_at = LocalDateTime(required=True)


class NotificationPageSchema(page_schema(NotificationSchema, name="NotificationListSchema")):
    unread = Int(required=True, metadata={"description": "未读条数"})


class ReadAllSchema(Schema):
    updated = Int(required=True)
    unread = Int(required=True)


@blp.route("/me/subscriptions", methods=["POST"])
@idempotent
@blp.arguments(SubscribeSchema)
@blp.response(200, LedgerSchema)
@blp.doc(security=BEARER)
@requires()
def subscribe(data):
    """记录用户刚同意的订阅消息（每同意一次可发送一条）"""
    user = current_user()
    return {"consents": consents.add_consents(user.id, data["template_keys"])}


@blp.route("/me/subscriptions", methods=["GET"])
@blp.response(200, LedgerSchema)
@blp.doc(security=BEARER)
@requires()
def my_subscriptions():
    """各模板剩余可发送的订阅消息条数"""
    return {"consents": consents.ledger(current_user().id)}


@blp.route("/me/notifications", methods=["GET"])
@blp.arguments(PageArgs, location="query")
@blp.response(200, NotificationPageSchema)
@blp.doc(security=BEARER)
@requires()
def my_notifications(args):
    """消息中心：全部提醒，最新在前，附未读条数"""
    return inbox.list_inbox(current_user().id, args["page"], args["per_page"])


@blp.route("/me/notifications/<int:notification_id>/read", methods=["POST"])
@blp.response(200, NotificationSchema)
@blp.doc(security=BEARER)
@requires()
def read_notification(notification_id):
    """标记一条消息为已读"""
    return inbox.mark_read(current_user().id, notification_id)


@blp.route("/me/notifications/read-all", methods=["POST"])
@blp.response(200, ReadAllSchema)
@blp.doc(security=BEARER)
@requires()
def read_all_notifications():
    """全部标记为已读"""
    user = current_user()
    return {"updated": inbox.mark_all_read(user.id), "unread": inbox.unread_count(user.id)}
