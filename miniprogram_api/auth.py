from flask import request
from marshmallow import Schema, fields, validate
from miniprogram_api.common import Blueprint, Int

from app.core import ratelimit
from app.identity import services
from app.identity.auth import bearer_token, current_user, requires
from miniprogram_api.common import BEARER, Bool
from miniprogram_api.me import UserSchema

blp = Blueprint("auth", __name__, description="登录")

# Generous for a market's shared Wi-Fi, tight enough to stop scripted code2session abuse.
LOGINS_PER_MINUTE_PER_ADDRESS = 120


class LoginSchema(Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=128),
                         metadata={"description": "wx.login() 返回的临时登录凭证"})


class LoginResultSchema(Schema):
    token = fields.String(required=True)
    expires_in = Int(required=True, metadata={"description": "秒"})
    user = fields.Nested(UserSchema, required=True)


@blp.route("/auth/login", methods=["POST"])
@blp.arguments(LoginSchema)
@blp.response(200, LoginResultSchema)
def login(data):
    """微信登录：code 换取本系统的登录凭证（微信会话密钥只保存在服务端，从不返回）"""
    ratelimit.enforce("login", request.remote_addr or "-", LOGINS_PER_MINUTE_PER_ADDRESS, 60)
    user, token, ttl = services.login_with_code(data["code"])
    return {"token": token, "expires_in": ttl, "user": user}


class LogoutSchema(Schema):
    all = Bool(load_default=False, metadata={"description": "true：退出该用户所有设备上的登录；默认只退出当前登录凭证"})


@blp.route("/auth/logout", methods=["POST"])
@blp.arguments(LogoutSchema, required=False)
@blp.response(204)
@blp.doc(security=BEARER)
@requires()
def logout(data):
    """退出登录：当前凭证（或全部凭证）立即失效，所有服务进程的下一次请求起生效"""
    services.log_out(current_user(), bearer_token(), bool((data or {}).get("all")))
