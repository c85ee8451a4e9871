"""One JSON reader for everything a client sends, used by Flask's `request.get_json` and by
the argument parser of every API blueprint.

Whatever it returns is safe to hand to marshmallow, the database and WeChat:
  - nesting is bounded (no RecursionError in the parser or in anything that walks the value),
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
# Lone surrogates, C0 controls other than \t \n \r, DEL and the C1 controls.
_BAD_TEXT = re.compile(r"[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class RequestJSONError(json.JSONDecodeError):
    def __init__(self, code: str, message: str) -> None:
        # A non-empty doc: webargs reads an error with doc == "" as "no body at all".
        super().__init__(message, "<request body>", 0)
        self.code = code
        self.chinese = message


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


def check_text(value: str) -> None:
    if _BAD_TEXT.search(value):
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
                raise RequestJSONError("JSON_TOO_DEEP", f"请求内容嵌套层数过多（最多 {MAX_DEPTH} 层）")
            if isinstance(value, dict):
                for key, item in value.items():
                    check_text(key)
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)


def _bracket_depth_exceeds(text: str, limit: int) -> bool:
    """A cheap pre-check so the C parser never recurses thousands deep: the count of opening
    brackets bounds the depth from above, and only bodies with many of them are scanned."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def loads(data: str | bytes):
    """Parse a client's JSON body, or raise RequestJSONError / JSONDecodeError."""
    if isinstance(data, (bytes, bytearray)):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestJSONError("INVALID_JSON", "请求体不是合法的 UTF-8 编码 JSON")
    if _bracket_depth_exceeds(data, MAX_DEPTH):
        raise RequestJSONError("JSON_TOO_DEEP", f"请求内容嵌套层数过多（最多 {MAX_DEPTH} 层）")
    try:
        value = json.loads(data, parse_int=_bounded_int, parse_float=_bounded_float,
                           parse_constant=_refuse_constant)
    except RecursionError:
        raise RequestJSONError("JSON_TOO_DEEP", f"请求内容嵌套层数过多（最多 {MAX_DEPTH} 层）")
    _check_value(value)
    return value
