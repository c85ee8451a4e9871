"""One error tree and one codes table. Every 4xx/5xx leaves the API as
{"error": {"code": "UPPER_SNAKE", "message": "中文说明", "details": {...}}}."""
from __future__ import annotations

from typing import Any

# code -> (http status, Chinese message that tells the user what to do)
CODES: dict[str, tuple[int, str]] = {
    # generic
    "BAD_REQUEST": (400, "请求格式有误，请检查后重试"),
    "VALIDATION_ERROR": (422, "提交的内容有误，请按提示修改后重试"),
    "INVALID_JSON": (400, "请求体不是合法的 JSON"),
    "JSON_TOO_DEEP": (400, "请求内容嵌套层数过多"),
    "NUMBER_OUT_OF_RANGE": (422, "数值超出允许范围，请检查后重试"),
    "TEXT_INVALID_CHARACTERS": (422, "内容含有无法识别的字符，请删除后重试"),
    "BODY_REQUIRED": (422, "请求体不能为空，请按接口文档提交 JSON 内容"),
    "UNAUTHORIZED": (401, "请先登录"),
    "TOKEN_INVALID": (401, "登录凭证无效，请重新登录"),
    "TOKEN_EXPIRED": (401, "登录已过期，请重新登录"),
    "TOKEN_REVOKED": (401, "已退出登录，请重新登录"),
    "ROLE_GRANT_NOT_FOUND": (404, "找不到该角色授权"),
    "ROLE_ALREADY_REVOKED": (409, "该角色已被撤销，无需重复操作"),
    "FORBIDDEN": (403, "您没有权限进行此操作"),
    "OUT_OF_SCOPE": (403, "该对象不在您的管辖范围内"),
    "NOT_FOUND": (404, "请求的资源不存在"),
    "METHOD_NOT_ALLOWED": (405, "不支持该请求方法"),
    "CONFLICT": (409, "操作与当前状态冲突，请刷新后重试"),
    "REASON_REQUIRED": (422, "请填写原因"),
    "IDEMPOTENCY_KEY_REUSED": (422, "同一个 Idempotency-Key 不能用于不同的请求内容"),
    "IDEMPOTENCY_IN_PROGRESS": (409, "相同的请求正在处理中，请稍后重试"),
    "PAYLOAD_TOO_LARGE": (413, "上传内容过大，请压缩后重试"),
    "URI_TOO_LONG": (414, "请求地址过长，请缩短查询参数后重试"),
    "HEADERS_TOO_LARGE": (431, "请求头过大，请检查后重试"),
    "UNSUPPORTED_MEDIA_TYPE": (415, "不支持的内容类型"),
    "RATE_LIMITED": (429, "操作过于频繁，请稍后再试"),
    "INTERNAL_ERROR": (500, "服务器开小差了，请稍后重试；如持续出现请联系管理员并提供请求编号"),
    "SERVICE_UNAVAILABLE": (503, "服务暂时不可用，请稍后重试"),
    # login and WeChat
    "WECHAT_CODE_INVALID": (401, "微信登录凭证无效或已使用，请重新进入小程序后再试"),
    "WECHAT_USER_BLOCKED": (403, "该微信账号存在风险，暂无法登录"),
    "WECHAT_RATE_LIMITED": (429, "微信登录过于频繁，请稍后再试"),
    "WECHAT_UNAVAILABLE": (503, "微信服务暂时不可用，请稍后重试"),
    "WECHAT_PHONE_CODE_INVALID": (400, "手机号授权凭证无效，请重新授权"),
    "CONTENT_RISKY": (422, "内容含有违规信息，请修改后重新提交"),
    # identity
    "ROLE_UNKNOWN": (422, "角色不存在"),
    "SCOPE_INVALID": (422, "管辖范围格式有误"),
    "REGION_NOT_FOUND": (404, "行政区划不存在"),
    "USER_NOT_FOUND": (404, "用户不存在"),
    # markets
    "MARKET_NOT_FOUND": (404, "市场不存在"),
}


# Path parameters that name an object, with the code its absence is answered with; and the
# refusals that mean "you may not see this object". Outside one's scope such a refusal on a route
# naming an object is answered exactly as if the object did not exist (app.core.http), so ids
# cannot be probed. Features register theirs beside their codes.
PATH_OBJECTS: dict[str, str] = {"market_id": "MARKET_NOT_FOUND", "grant_id": "ROLE_GRANT_NOT_FOUND"}
NOT_VISIBLE: set[str] = {"FORBIDDEN", "OUT_OF_SCOPE"}


def register_path_objects(objects: dict[str, str], not_visible: tuple[str, ...] = ()) -> None:
    for param, code in objects.items():
        if PATH_OBJECTS.get(param, code) != code:
            raise ValueError(f"path parameter {param} registered with two not-found codes")
        PATH_OBJECTS[param] = code
    NOT_VISIBLE.update(not_visible)


class APIError(Exception):
    """Base of every error the API answers on purpose. Subclasses set `code`."""

    code = "BAD_REQUEST"

    def __init__(self, message: str | None = None, details: dict[str, Any] | None = None,
                 code: str | None = None) -> None:
        if code:
            self.code = code
        status, default_message = CODES[self.code]
        self.status = status
        self.message = message or default_message
        self.details = details or {}
        super().__init__(self.message)

    def to_envelope(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def register_codes(codes: dict[str, tuple[int, str]]) -> None:
    """Feature packages add their codes here at import. A code is one meaning: the same code
    with another HTTP status is a bug; with other wording, the first registration (the core
    table's, for shared codes like REASON_REQUIRED) is kept and callers pass their own message."""
    for code, entry in codes.items():
        if code in CODES:
            if CODES[code][0] != entry[0]:
                raise ValueError(f"error code {code} registered twice with different statuses")
            continue
        CODES[code] = entry


class Unauthorized(APIError):
    code = "UNAUTHORIZED"


class Forbidden(APIError):
    code = "FORBIDDEN"


class OutOfScope(APIError):
    code = "OUT_OF_SCOPE"


class NotFound(APIError):
    code = "NOT_FOUND"


class Conflict(APIError):
    code = "CONFLICT"
