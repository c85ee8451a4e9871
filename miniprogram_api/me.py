from marshmallow import Schema, fields, validate

from app.identity.auth import current_user, requires
from app.identity import services
from app.reminders import notices
from app.identity.models import ROLE_LABELS
from miniprogram_api.common import BEARER, Blueprint, Bool, Int, LocalDateTime, ReasonSchema

blp = Blueprint("me", __name__, description="当前用户")


class RoleSchema(Schema):
    id = Int(required=True, metadata={"description": "授权编号（撤销时用）"})
    role = fields.String(required=True)
    label = fields.Function(lambda grant: ROLE_LABELS.get(grant.role, grant.role))
    scope = fields.String(allow_none=True, metadata={"example": "region:450400"})


class UserSchema(Schema):
    id = Int(required=True)
    nickname = fields.String(allow_none=True)
    real_name = fields.String(allow_none=True)
    show_name = Bool(required=True)
    phone = fields.Function(lambda user: services.mask_phone(user.phone), allow_none=True,
                            metadata={"description": "脱敏手机号，如 138****8000"})
    roles = fields.Function(lambda user: RoleSchema(many=True).dump(user.grants))
    created_at = LocalDateTime()


class ProfileUpdateSchema(Schema):
    real_name = fields.String(validate=validate.Length(min=2, max=20),
                              metadata={"description": "真实姓名（2–20 字，经内容安全检测）", "example": "王建军"})
    show_name = Bool(metadata={"description": "是否向组织者以外的人（如积分榜上的其他骑手、党员）显示真实姓名；"
                                              "默认不显示，显示为 王*军"})


class PhoneSchema(Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=128),
                         metadata={"description": "getPhoneNumber 按钮回调中的 code"})


def memberships_of(user) -> list:
    from app.orgs.queries import memberships_for_user

    return memberships_for_user(user)


class MeSchema(UserSchema):
    memberships = fields.Function(lambda user: memberships_of(user))


@blp.route("/me", methods=["GET"])
@blp.response(200, MeSchema)
@blp.doc(security=BEARER)
@requires()
def me():
    """我的资料、角色与管辖范围、党组织关系"""
    return current_user()


@blp.route("/me", methods=["PUT"])
@blp.arguments(ProfileUpdateSchema)
@blp.response(200, MeSchema)
@blp.doc(security=BEARER)
@requires()
def update_me(data):
    """修改我的资料：真实姓名、是否公开显示姓名"""
    return services.update_profile(current_user(), data)


@blp.route("/auth/phone", methods=["POST"])
@blp.arguments(PhoneSchema)
@blp.response(200, UserSchema)
@blp.doc(security=BEARER)
@requires()
def bind_phone(data):
    """绑定手机号（微信手机号快速验证），返回脱敏后的资料"""
    return services.bind_phone(current_user(), data["code"])


class RevokedGrantSchema(RoleSchema):
    user_id = Int(required=True)
    revoked_at = LocalDateTime(required=True)


@blp.route("/role-grants/<int:grant_id>/revoke", methods=["POST"])
@blp.arguments(ReasonSchema)
@blp.response(200, RevokedGrantSchema)
@blp.doc(security=BEARER)
@requires("regulator", "admin")
def revoke_grant(data, grant_id):
    """撤销一个角色授权（监管人员：本辖区内的授权；系统管理员：任意授权）；记入审计日志，立即生效"""
    grant = services.revoke_grant(current_user(), grant_id, data["reason"])
    notices.tell_role_revoked(grant, data["reason"])
    return grant
