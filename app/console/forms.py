"""Forms that show what was wrong next to the field and keep what the user typed.

A view reads the posted form into `Form`, loads it with the same marshmallow schema the API
uses (its messages are Chinese, app/core/messages_zh.py), calls the service, and on any refusal
renders the page again with the form:

    form = Form.from_request()
    data = form.load(StallNumbersSchema())
    if data is not None:
        try:
            services.add_stalls(g.console_user, market, data["numbers"])
            return redirect(url_for("console.market", market_id=market.id), 303)
        except APIError as error:
            form.refuse(error)
    return render_page("console/market.html", nav_key="markets", title=..., form=form), 422

and the template uses the macros of console/_forms.html:

    {% from "console/_forms.html" import field, form_errors, csrf with context %}
    <form method="post">{{ csrf() }}{{ form_errors(form) }}
      {{ field(form, "numbers", "摊位号", hint="每行一个") }} …
"""
from __future__ import annotations

from typing import Any

from flask import request
from marshmallow import Schema, ValidationError, fields
from werkzeug.datastructures import MultiDict

from app.core.errors import APIError

FORM_ERROR = "_form"  # errors about the whole form, shown above it
# The API's wording, said the way a form says it.
_WORDING = {"必填项，不能缺少": "请填写此项", "不能为空（null）": "请填写此项"}


class Form:
    def __init__(self, data: MultiDict | dict | None = None) -> None:
        self.data = data if isinstance(data, MultiDict) else MultiDict(data or {})
        self.errors: dict[str, list[str]] = {}

    @classmethod
    def from_request(cls) -> "Form":
        return cls(request.form.copy())

    # -- what the template reads -----------------------------------------------------------
    def value(self, name: str, default: str = "") -> str:
        """What the user typed (or the form was filled with)."""
        value = self.data.get(name)
        return default if value is None else str(value)

    def values(self, name: str) -> list[str]:
        return [str(value) for value in self.data.getlist(name)]

    def error(self, name: str) -> str | None:
        """The field's messages as one line, or None."""
        messages = self.errors.get(name)
        return "；".join(messages) if messages else None

    @property
    def form_errors(self) -> list[str]:
        return self.errors.get(FORM_ERROR, [])

    @property
    def ok(self) -> bool:
        return not self.errors

    # -- what the view calls ---------------------------------------------------------------
    def add_error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(_WORDING.get(message, message))

    def load(self, schema: Schema) -> dict[str, Any] | None:
        """The schema's fields from the form (an empty field counts as not filled in; a List
        field takes every value of its name); None with field errors when the schema refuses."""
        raw: dict[str, Any] = {}
        for name, field in schema.fields.items():
            key = field.data_key or name
            if isinstance(field, fields.List):
                values = [value for value in self.data.getlist(key) if value.strip()]
                if values:
                    raw[key] = values
            elif (self.data.get(key) or "").strip():
                raw[key] = self.data.get(key)
        try:
            return schema.load(raw)
        except ValidationError as error:
            self._add_messages(error.messages)
            return None

    def refuse(self, error: APIError) -> None:
        """A service's refusal: its field messages next to their fields, else its message
        above the form."""
        field_messages = (error.details or {}).get("fields")
        if isinstance(field_messages, dict) and field_messages:
            self._add_messages(field_messages)
        else:
            self.add_error(FORM_ERROR, error.message)

    def _add_messages(self, messages) -> None:
        if not isinstance(messages, dict):
            messages = {FORM_ERROR: messages}
        for name, found in messages.items():
            key = FORM_ERROR if name == "_schema" else name
            for message in _flatten(found):
                self.add_error(key, message)


def _flatten(found) -> list[str]:
    if isinstance(found, str):
        return [found]
    if isinstance(found, dict):  # a List field's messages by index
        return [message for value in found.values() for message in _flatten(value)]
    return [message for value in found for message in _flatten(value)]
