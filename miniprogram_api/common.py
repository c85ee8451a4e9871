"""Schemas and helpers shared by the feature blueprints."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.core.time import to_local

BEARER = [{"bearerAuth": []}]


class LocalDateTime(fields.DateTime):
    """Stored naive UTC, shown in Asia/Shanghai with its offset."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return super()._serialize(to_local(value), attr, obj, **kwargs)


class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"example": "VALIDATION_ERROR"})
    message = fields.String(required=True, metadata={"example": "提交的内容有误，请按提示修改后重试"})
    details = fields.Dict(required=True)


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)


class ReasonSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500),
                           metadata={"description": "原因（必填）"})


class DecisionSchema(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(["approve", "reject"]))
    reason = fields.String(load_default=None, validate=validate.Length(max=500))


def text(max_len: int, required: bool = True, **kwargs) -> fields.String:
    """A trimmed, length-bounded string field."""
    length = validate.Length(min=1 if required else 0, max=max_len)
    return fields.String(required=required, validate=length, **kwargs)
