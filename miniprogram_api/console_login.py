"""扫码登录管理后台: the mini-program confirms a console login shown as a QR code on a PC."""
from __future__ import annotations

from marshmallow import Schema, fields

import app.console.tickets as tickets
from app.identity.auth import current_user, requires
from miniprogram_api.common import BEARER, Blueprint, ErrorSchema

blp = Blueprint("console_login", __name__, description="管理后台扫码登录")

CONFIRMED_MESSAGE = "已确认登录，请在电脑上继续操作"


class ConsoleLoginConfirmedSchema(Schema):
    status = fields.String(required=True, metadata={"enum": ["confirmed"], "example": "confirmed"})
    message = fields.String(required=True, metadata={"example": CONFIRMED_MESSAGE})


@blp.route("/console-login/<ticket>/confirm", methods=["POST"])
@blp.response(200, ConsoleLoginConfirmedSchema)
@blp.alt_response(403, schema=ErrorSchema, description="没有管理后台角色：CONSOLE_ROLE_REQUIRED（提示中说明原因；"
                                                       "电脑上的登录页同时显示该原因）")
@blp.alt_response(404, schema=ErrorSchema, description="二维码无效：CONSOLE_TICKET_NOT_FOUND")
@blp.alt_response(409, schema=ErrorSchema, description="二维码已使用过：CONSOLE_TICKET_USED")
@blp.alt_response(410, schema=ErrorSchema, description="二维码已过期：CONSOLE_TICKET_EXPIRED")
@blp.doc(security=BEARER)
@requires()
def confirm_console_login(ticket):
    """确认登录管理后台：用户在小程序中扫描电脑上 /console/login 的二维码并确认后调用。

    二维码内容为 `{PUBLIC_BASE_URL}/console/scan/{ticket}`，取最后一段作为 ticket。二维码约 2 分钟内有效、
    只能确认一次；只有持有系统管理员、市场监管人员、市场管理方或支部书记角色的用户可以确认，其他用户收到
    CONSOLE_ROLE_REQUIRED。确认后电脑上的登录页自动进入管理后台。"""
    tickets.confirm(ticket, current_user())
    return {"status": "confirmed", "message": CONFIRMED_MESSAGE}
