"""Error codes of the web console and its login (管理后台)."""
from app.core.errors import register_codes

ROLE_REQUIRED_MESSAGE = ("您的账号没有管理后台的权限：管理后台仅供市场监管人员、市场管理方、支部书记和系统管理员使用。"
                         "如需开通，请联系上级管理员授予相应角色")

register_codes({
    "CONSOLE_TICKET_NOT_FOUND": (404, "登录二维码无效，请在电脑上刷新二维码后重新扫码"),
    "CONSOLE_TICKET_EXPIRED": (410, "登录二维码已过期，请在电脑上刷新二维码后重新扫码"),
    "CONSOLE_TICKET_USED": (409, "该登录二维码已使用过，请在电脑上刷新二维码后重新扫码"),
    "CONSOLE_TICKET_NOT_CONFIRMED": (409, "尚未在小程序中确认登录，请用小程序扫码并确认"),
    "CONSOLE_TICKET_OTHER_BROWSER": (403, "该登录二维码是为另一个浏览器生成的，请在本浏览器中刷新二维码后重新扫码"),
    "CONSOLE_ROLE_REQUIRED": (403, ROLE_REQUIRED_MESSAGE),
    "CONSOLE_LOGIN_REQUIRED": (401, "请先登录管理后台（登录可能已超时，请重新扫码登录）"),
    "CONSOLE_CSRF_FAILED": (403, "页面已失效或请求来源不明（安全校验未通过），请刷新页面后重试"),
})
