"""marshmallow's field and validator messages in Simplified Chinese.

Validation details (`error.details.fields`) reach the mini-program, which may show them: every
message a user can see is Chinese. marshmallow copies a field class's default messages when a
field is created, so `install()` must run before any schema class is defined (app/__init__.py
calls it as the package is imported). Codes and field names stay as they are."""
from __future__ import annotations

from marshmallow import fields, schema, validate

FIELD_MESSAGES = {
    fields.Field: {"required": "必填项，不能缺少", "null": "不能为空（null）", "validator_failed": "取值不合要求"},
    fields.String: {"invalid": "须为文本", "invalid_utf8": "不是有效的 UTF-8 文本"},
    fields.Number: {"invalid": "须为数字", "too_large": "数值过大"},
    fields.Integer: {"invalid": "须为整数"},
    fields.Float: {"special": "不能是 NaN 或无穷大"},
    fields.Decimal: {"special": "不能是 NaN 或无穷大"},
    fields.Boolean: {"invalid": "须为 true 或 false"},
    fields.DateTime: {"invalid": "日期时间格式有误，应为 2026-03-01T09:00:00（不带时区视为北京时间）",
                      "invalid_awareness": "日期时间格式有误", "format": "无法格式化为日期时间"},
    fields.Date: {"invalid": "日期格式有误，应为 2026-03-01", "format": "无法格式化为日期"},
    fields.Time: {"invalid": "时间格式有误，应为 09:00"},
    fields.List: {"invalid": "须为列表"},
    fields.Tuple: {"invalid": "须为列表"},
    fields.Mapping: {"invalid": "须为对象"},
    fields.Nested: {"type": "须为对象"},
    fields.URL: {"invalid": "不是有效的网址"},
    fields.Email: {"invalid": "不是有效的邮箱地址"},
    fields.UUID: {"invalid_uuid": "不是有效的 UUID"},
    fields.Enum: {"unknown": "须为以下之一：{choices}"},
}
SCHEMA_MESSAGES = {"type": "请求内容须为对象", "unknown": "不认识的字段（请删去）"}
VALIDATOR_MESSAGES = {
    validate.Length: {"message_min": "至少 {min} 个字符（或项）", "message_max": "最多 {max} 个字符（或项）",
                      "message_all": "长度须在 {min} 到 {max} 之间", "message_equal": "长度须为 {equal}"},
    validate.Range: {"message_min": "须{min_op} {{min}}", "message_max": "须{max_op} {{max}}",
                     "message_all": "须{min_op} {{min}} 且{max_op} {{max}}", "message_gte": "大于或等于",
                     "message_gt": "大于", "message_lte": "小于或等于", "message_lt": "小于"},
    validate.OneOf: {"default_message": "须为以下之一：{choices}"},
    validate.ContainsOnly: {"default_message": "只能从以下选项中选择：{choices}"},
    validate.Regexp: {"default_message": "格式不符合要求"},
    validate.Equal: {"default_message": "须等于 {other}"},
    validate.NoneOf: {"default_message": "不允许的取值"},
    validate.Predicate: {"default_message": "取值不合要求"},
    validate.URL: {"default_message": "不是有效的网址"},
    validate.Email: {"default_message": "不是有效的邮箱地址"},
}


def install() -> None:
    for field_class, messages in FIELD_MESSAGES.items():
        # Only the messages the class itself defines; subclasses inherit through the MRO merge.
        field_class.default_error_messages = {**field_class.__dict__.get("default_error_messages", {}), **messages}
    schema.Schema._default_error_messages = {**schema.Schema._default_error_messages, **SCHEMA_MESSAGES}
    for validator_class, messages in VALIDATOR_MESSAGES.items():
        for name, text in messages.items():
            setattr(validator_class, name, text)
