from flask import request
from marshmallow import Schema, fields, validate
from miniprogram_api.common import Blueprint, Int

from app.core import ratelimit
from app.identity import services
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
