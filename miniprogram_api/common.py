"""Schemas, fields and the blueprint class shared by the feature blueprints.

Every feature module builds its `blp` from `Blueprint` below, never from flask_smorest's: its
argument parser reads bodies with app.core.safejson (bounded depth and numbers, valid text),
and a JSON body that a route declares required must be present."""
from __future__ import annotations

import functools

import flask_smorest
from flask import request
from marshmallow import Schema, fields, validate, validates_schema
from webargs.flaskparser import FlaskParser

from app.core import safejson, user_reads
from app.core.errors import APIError
from app.core.time import to_local

# A 6-digit administrative code in ASCII digits (\d would also take other scripts' digits).
REGION_CODE = validate.Regexp(r"^[0-9]{6}$", error="行政区划代码为 6 位数字")

BEARER = [{"bearerAuth": []}]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx_download(data: bytes, filename: str):
    """An xlsx attachment named in Chinese (RFC 6266 filename*, with an ASCII fallback);
    never cached: exports hold personal data."""
    import io

    from flask import send_file

    response = send_file(io.BytesIO(data), mimetype=XLSX, as_attachment=True, download_name=filename)
    response.headers["Cache-Control"] = "no-store"
    return response


def xlsx_doc(description: str) -> dict:
    """The OpenAPI entry of an xlsx answer."""
    return {"description": description, "content": {XLSX: {"schema": {"type": "string", "format": "binary"}}}}


INT32_MAX = 2**31 - 1


class SafeParser(FlaskParser):
    # One multipart body (fields and files) documented and loaded by one schema.
    __location_map__ = {**FlaskParser.__location_map__, "form_and_files": "load_form_and_files"}

    def load_form_and_files(self, req, schema):
        from werkzeug.datastructures import CombinedMultiDict

        _check_texts(req.form)
        _refuse_text_for_files(req.form, schema)
        return self._makeproxy(CombinedMultiDict([req.form, req.files]), schema)

    def load_querystring(self, req, schema):
        _check_texts(req.args)
        return self._makeproxy(req.args, schema)

    def load_form(self, req, schema):
        _check_texts(req.form)
        return self._makeproxy(req.form, schema)

    def _raw_load_json(self, req):
        from webargs import core
        from webargs.flaskparser import is_json_request

        if not is_json_request(req):
            return core.missing
        return safejson.loads(req.get_data(cache=True))

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        if isinstance(error, safejson.RequestJSONError):
            raise error.as_api_error()
        raise APIError(code="INVALID_JSON")


def _file_field_names(schema) -> set[str]:
    """The multipart names a schema reads as files (an Upload field, or a list of them)."""
    from flask_smorest.fields import Upload

    names = set()
    for name, field in schema.fields.items():
        inner = getattr(field, "inner", field)
        if isinstance(field, Upload) or isinstance(inner, Upload):
            names.add(field.data_key or name)
    return names


def _refuse_text_for_files(form, schema) -> None:
    """A plain text part under a file's name is a 422 on that field: a view reads a file's
    stream, and a string has none (the form and files share one namespace in the proxy)."""
    from marshmallow import ValidationError

    misplaced = {name: ["须为上传的文件（multipart 文件部分，带 filename），不能是文字"]
                 for name in _file_field_names(schema) if name in form}
    if misplaced:
        raise ValidationError(misplaced)


def _check_texts(values) -> None:
    """Query and form values obey the same text rule as JSON bodies (a %00 in a query string
    must not reach the database)."""
    for value in (v for vs in values.listvalues() for v in vs):
        try:
            safejson.check_text(value)
        except safejson.RequestJSONError as error:
            raise error.as_api_error()


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = SafeParser()
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {**flask_smorest.Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
                                             "form_and_files": "multipart/form-data"}

    def route(self, rule, *, parameters=None, **options):
        """As flask-smorest's; a route naming a stall by its sticker token documents the 410 a
        voided (reissued) sticker answers with."""
        decorator = super().route(rule, parameters=parameters, **options)
        if "<token>" not in rule:
            return decorator

        def wrap(func):
            gone = self.alt_response(410, schema=ErrorSchema,
                                     description="二维码已作废（摊位已重新发码）：STALL_TOKEN_VOID")
            return decorator(gone(func))

        return wrap

    def arguments(self, schema, *, location="json", required=True, **kwargs):
        """As flask-smorest's; a required JSON body that is absent or empty is a 422, not an
        empty object that an all-optional schema would accept. A schema class is instantiated
        once here: webargs would build a new instance for every request (a tenth of a small
        read's time), and loading keeps no state on the instance."""
        if isinstance(schema, type):
            schema = schema()
        decorator = super().arguments(schema, location=location, required=required, **kwargs)
        if location != "json" or not required:
            return decorator

        def wrap(func):
            parsed = decorator(func)

            @functools.wraps(parsed)
            def body_required(*args, **kw):
                if not request.get_data(cache=True).strip():
                    raise APIError(code="BODY_REQUIRED")
                return parsed(*args, **kw)

            return body_required

        return wrap


# What app.core.safejson accepts in text (no control characters but tab and line breaks),
# stated in the document for every string without a format, enum or pattern of its own; a text
# that must not be blank also needs one character that is not white space.
_CONTROLS = safejson.CONTROLS_PATTERN
TEXT_PATTERN = f"^[^{_CONTROLS}]*$"
NONBLANK_PATTERN = f"^[^{_CONTROLS}]*[^\\s{_CONTROLS}][^{_CONTROLS}]*$"


def document_text_rule(self, field, ret=None, **kwargs) -> dict:
    """apispec attribute function: the text rules on string fields."""
    if not ret or ret.get("type") != "string" or {"format", "enum", "pattern"} & set(ret):
        return {}
    return {"pattern": NONBLANK_PATTERN if getattr(field, "nonblank", False) else TEXT_PATTERN}


class Int(fields.Integer):
    """An integer with bounds the document states and the database can hold: the 32-bit signed
    range always applies, beside any narrower Range the field gives (the document shows the
    tighter of the two)."""

    def __init__(self, *args, **kwargs):
        validators = kwargs.get("validate") or []
        validators = list(validators) if isinstance(validators, (list, tuple)) else [validators]
        validators.append(validate.Range(min=-INT32_MAX - 1, max=INT32_MAX))
        kwargs["validate"] = validators
        super().__init__(*args, **kwargs)

    def _validated(self, value):
        # marshmallow reads 1.5 as 1: a fraction where a whole number belongs is refused, not cut.
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


class Id(Int):
    """A row id: 1 … 2**31-1."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("validate", validate.Range(min=1))
        super().__init__(*args, **kwargs)


class Bool(fields.Boolean):
    """JSON true/false only: 0, 1, "yes" or "on" are not booleans in a request body."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):  # 0 == False in Python: a set lookup would accept it
            raise self.make_error("invalid", input=value)
        return value


class FormDate(fields.Date):
    """An optional date in a multipart form: absent or empty means none (wx.uploadFile sends
    "" for an empty field); there is no null in a form, so the document does not offer one."""

    def __init__(self, **kwargs):
        super().__init__(load_default=None, allow_none=False, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if value == "":
            return None
        return super()._deserialize(value, attr, data, **kwargs)


class QueryBool(fields.Boolean):
    """A boolean in a query string: true/false (also 1/0), nothing else."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, truthy={"true", "1", True}, falsy={"false", "0", False}, **kwargs)

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


class Text(fields.String):
    """Text a person typed: leading and trailing blanks never count towards its length or
    content; a non-blank one must keep at least one character."""

    def __init__(self, *args, nonblank: bool = False, **kwargs):
        self.nonblank = nonblank
        super().__init__(*args, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


def text(max_len: int, required: bool = True, blank: bool | None = None, **kwargs) -> Text:
    """A trimmed, length-bounded text field; blank (empty after trimming) only where it is
    optional, unless `blank` says otherwise."""
    blank = (not required) if blank is None else blank
    return Text(required=required, nonblank=not blank,
                validate=validate.Length(min=0 if blank else 1, max=max_len), **kwargs)


def own_read(topic: str):
    """The caller's own `topic` (app.core.generations), answered from the worker's memory while
    unchanged; place it between `@blp.arguments` and `@blp.response`."""
    from app.identity.auth import current_user

    return user_reads.cached_read(topic, owner=lambda: current_user().id)


class PatchSchema(Schema):
    """A PATCH body: only the fields sent change; an empty body is refused."""

    @validates_schema
    def something_to_change(self, data, **kwargs):
        if not data:
            raise APIError(code="BODY_REQUIRED")


class PersonSchema(Schema):
    id = Int(required=True)
    name = fields.String(required=True, metadata={"description": "姓名（未填写时为微信昵称）"})
    phone = fields.String(allow_none=True, metadata={"description": "脱敏手机号，如 138****8000"})


class Person(fields.Nested):
    """The person a row names by a user id (`attribute`, default user_id), as a card: name and
    masked phone (app.identity.people; lists preload their page's people)."""

    def __init__(self, attribute: str = "user_id", **kwargs) -> None:
        kwargs.setdefault("dump_only", True)
        kwargs.setdefault("allow_none", True)
        super().__init__(PersonSchema, attribute=attribute, **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        from app.identity import people

        return super()._serialize(people.card(value), attr, obj, **kwargs)


# Every coordinate in or out of this API is GCJ-02 (国测局坐标), what wx.getLocation({type: 'gcj02'})
# returns and what WeChat's map components draw; WGS-84 from a raw GPS would be off by hundreds of metres.
GCJ02 = "GCJ-02（国测局坐标，即 wx.getLocation({type: 'gcj02'}) 的返回值）"


def latitude(**kwargs) -> fields.Float:
    kwargs.setdefault("validate", validate.Range(-90, 90))
    return fields.Float(metadata={"description": f"纬度，{GCJ02}"}, **kwargs)


def longitude(**kwargs) -> fields.Float:
    kwargs.setdefault("validate", validate.Range(-180, 180))
    return fields.Float(metadata={"description": f"经度，{GCJ02}"}, **kwargs)
