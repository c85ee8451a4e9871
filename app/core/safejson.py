"""One JSON reader for everything a client sends, used by Flask's `request.get_json` and by
the argument parser of every API blueprint.

Whatever it returns is safe to hand to marshmallow, the database and WeChat:
  - nesting is bounded (the parser's own recursion limit, then MAX_DEPTH on the value),
  - integers are bounded in digits before Python converts them (no quadratic int parsing, no
    ValueError from the 4300-digit limit), NaN/Infinity are refused,
  - every string, keys included, is valid Unicode text: no lone surrogates (which no database
    driver can encode) and no NUL or other C0 control characters except tab and newlines.
A refusal is a `RequestJSONError` (a JSONDecodeError, so every caller that already handles
malformed JSON handles these too) carrying the envelope code and a Chinese message."""
from __future__ import annotations

import json
import re

MAX_DEPTH = 32
MAX_INT_DIGITS = 18  # fits a signed 64-bit integer; ids and counts are far below
# C0 controls other than \t \n \r, DEL and the C1 controls: the one rule, here for Python and
# in the OpenAPI document's patterns (CONTROLS_PATTERN, read by miniprogram_api.common).
_CONTROL_RANGES = ((0x00, 0x08), (0x0B, 0x0C), (0x0E, 0x1F), (0x7F, 0x9F))
CONTROLS_PATTERN = "".join(f"\\u{low:04x}-\\u{high:04x}" for low, high in _CONTROL_RANGES)
# ... and lone surrogates, which no database driver can encode (a JSON pattern cannot say so).
_BAD_TEXT = re.compile("[\ud800-\udfff" + "".join(f"{chr(low)}-{chr(high)}" for low, high in _CONTROL_RANGES) + "]")


class RequestJSONError(json.JSONDecodeError):
    def __init__(self, code: str, message: str) -> None:
        # A non-empty doc: webargs reads an error with doc == "" as "no body at all".
        super().__init__(message, "<request body>", 0)
        self.code = code
        self.chinese = message

    def as_api_error(self):
        from app.core.errors import APIError

        return APIError(code=self.code, message=self.chinese)


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise RequestJSONError("NUMBER_OUT_OF_RANGE", f"数字位数过多（最多 {MAX_INT_DIGITS} 位）")
    return int(digits)


def _refuse_constant(name: str):
    raise RequestJSONError("NUMBER_OUT_OF_RANGE", f"不支持的数值：{name}")


def _bounded_float(text: str) -> float:
    if len(text) > 64:
        raise RequestJSONError("NUMBER_OUT_OF_RANGE", "数字位数过多")
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise RequestJSONError("NUMBER_OUT_OF_RANGE", "数值超出允许范围")
    return value


def _too_deep() -> RequestJSONError:
    return RequestJSONError("JSON_TOO_DEEP", f"请求内容嵌套层数过多（最多 {MAX_DEPTH} 层）")


def has_bad_text(value: str) -> bool:
    return _BAD_TEXT.search(value) is not None


def check_text(value: str) -> None:
    if has_bad_text(value):
        raise RequestJSONError("TEXT_INVALID_CHARACTERS", "内容含有无法识别的字符（如控制字符或残缺的表情符号），请删除后重试")


def _check_value(root) -> None:
    """Depth and text checks without recursion (the value may be as deep as the parser allows)."""
    stack = [(root, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            check_text(value)
        elif isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise _too_deep()
            if isinstance(value, dict):
                for key, item in value.items():
                    check_text(key)
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)


def loads(data: str | bytes):
    """Parse a client's JSON body, or raise RequestJSONError / JSONDecodeError."""
    if isinstance(data, (bytes, bytearray)):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestJSONError("INVALID_JSON", "请求体不是合法的 UTF-8 编码 JSON")
    try:
        value = json.loads(data, parse_int=_bounded_int, parse_float=_bounded_float,
                           parse_constant=_refuse_constant)
    except RecursionError:  # the C parser gives up near the interpreter's recursion limit
        raise _too_deep()
    _check_value(value)
    return value
