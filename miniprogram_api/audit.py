"""The audit trail (审计日志) for regulators (their region) and administrators (all)."""
from marshmallow import Schema, fields, validate

from app.core.pagination import PageArgs, page_schema
from app.identity.auth import current_user, requires
from app.worklists.audit import audit_log
from miniprogram_api.common import BEARER, Blueprint, Int, LocalDateTime, Person

blp = Blueprint("audit", __name__, description="审计日志")


class AuditArgs(PageArgs):
    target_type = fields.String(load_default=None, validate=validate.Length(min=1, max=32),
                                metadata={"description": "对象类型，如 credential、pledge、stall、user", "example": "credential"})
    target_id = fields.String(load_default=None, validate=validate.Length(min=1, max=64),
                              metadata={"description": "对象编号（与 target_type 一起用）"})
    actor = Int(load_default=None, metadata={"description": "操作人用户 id"})
    action = fields.String(load_default=None, validate=validate.Length(min=1, max=64),
                           metadata={"description": "操作（前缀匹配），如 credential. 或 role.revoke"})
    from_ = fields.Date(load_default=None, data_key="from", metadata={"description": "开始日期（北京时间，含）"})
    to = fields.Date(load_default=None, metadata={"description": "结束日期（北京时间，含）"})


class AuditEntrySchema(Schema):
    id = Int(required=True)
    at = LocalDateTime(required=True)
    action = fields.String(required=True, metadata={"example": "credential.approve"})
    actor = Person("actor_id", metadata={"description": "操作人（系统或命令行操作时为 null）"})
    actor_role = fields.String(allow_none=True)
    target_type = fields.String(required=True)
    target_id = fields.String(required=True)
    region_code = fields.String(allow_none=True, metadata={"description": "对象所在行政区划"})
    before = fields.Dict(allow_none=True)
    after = fields.Dict(allow_none=True)
    reason = fields.String(allow_none=True)
    request_id = fields.String(allow_none=True, metadata={"description": "请求编号（与服务器日志对应）"})


@blp.route("/audit-log", methods=["GET"])
@blp.arguments(AuditArgs, location="query")
@blp.response(200, page_schema(AuditEntrySchema))
@blp.doc(security=BEARER)
@requires("regulator", "admin")
def list_audit_log(args):
    """审计日志：谁、何时、以什么角色、对什么做了什么、前后差异与原因（监管人员：本辖区；系统管理员：全部），新的在前"""
    filters = {**args, "from": args.pop("from_")}
    page, per_page = filters.pop("page"), filters.pop("per_page")
    return audit_log(current_user(), filters, page, per_page)
