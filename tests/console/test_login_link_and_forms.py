"""`flask console login-link OPENID` (the first admin's way in) and the form helper that other
console pages build on (field errors in Chinese next to the field, typed values kept)."""
from datetime import timedelta

from flask import render_template_string
from flask.testing import FlaskClient
from marshmallow import Schema, fields, validate

from app.console.forms import Form
from app.core.errors import APIError
from tests.console.conftest import csrf_of


def _link(app, openid: str):
    result = app.test_cli_runner().invoke(args=["console", "login-link", openid])
    return result, result.stdout.strip().removeprefix(app.config["PUBLIC_BASE_URL"])


def test_the_login_link_signs_in_once_and_its_page_alone_uses_nothing(app, client, auth):
    auth.grant("first-admin", "admin")
    result, path = _link(app, "first-admin")
    assert result.exit_code == 0 and path.startswith("/console/login/link/")
    assert "只能使用一次" in result.stderr
    for _ in range(2):  # opening (or a chat app previewing) the link does not use it
        page = client.get(path)
        assert page.status_code == 200 and "登录管理后台" in page.get_data(as_text=True)
    csrf = csrf_of(page.get_data(as_text=True))
    assert client.post(path).status_code == 403  # CSRF
    signed_in = client.post(path, data={"csrf_token": csrf})
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/console/"
    assert "系统管理员" in client.get("/console/").get_data(as_text=True)

    other = FlaskClient(app, use_cookies=True)
    other_csrf = csrf_of(other.get(path).get_data(as_text=True))
    again = other.post(path, data={"csrf_token": other_csrf})
    assert again.status_code == 409 and "已使用过" in again.get_data(as_text=True)


def test_the_login_link_expires(app, client, auth, clock):
    clock.set(clock.now())
    auth.grant("first-admin", "admin")
    _, path = _link(app, "first-admin")
    csrf = csrf_of(client.get(path).get_data(as_text=True))
    clock.advance(timedelta(minutes=app.config["CONSOLE_LOGIN_LINK_MINUTES"], seconds=1))
    response = client.post(path, data={"csrf_token": csrf})
    assert response.status_code == 410 and "已过期" in response.get_data(as_text=True)


def test_a_scan_ticket_is_not_a_login_link(app, client, console):
    ticket, csrf = console.login_page()
    response = client.post(f"/console/login/link/{ticket}", data={"csrf_token": csrf})
    assert response.status_code == 404


def test_the_command_refuses_unknown_users_and_users_without_a_console_role(app, auth):
    result, _ = _link(app, "nobody")
    assert result.exit_code != 0 and "找不到用户 nobody" in result.output and "users grant nobody admin" in result.output
    auth.grant("merchant1", "merchant")
    result, _ = _link(app, "merchant1")
    assert result.exit_code != 0 and "没有管理后台的角色" in result.output


class StallsSchema(Schema):
    number = fields.String(required=True, validate=validate.Length(max=8))
    count = fields.Integer(required=True)
    tags = fields.List(fields.String(), load_default=list)


FORM_PAGE = """{% from "console/_forms.html" import field, form_errors, csrf with context %}
<form method="post">{{ csrf() }}{{ form_errors(form) }}
{{ field(form, "number", "摊位号", required=True, hint="最多 8 个字符") }}{{ field(form, "count", "数量") }}</form>"""


def test_form_errors_are_chinese_next_to_their_field_and_typed_values_stay(app):
    # a console route, so the console's template context applies
    with app.test_request_context("/console/logout", method="POST",
                                  data={"number": "A-0123456789", "count": "十", "csrf_token": "t"}):
        form = Form.from_request()
        assert form.load(StallsSchema()) is None
        assert form.error("number") == "最多 8 个字符（或项）" and form.error("count") == "须为整数"
        html = render_template_string(FORM_PAGE, form=form)
    assert 'value="A-0123456789"' in html and 'value="十"' in html
    assert '<label for="field-number">摊位号' in html and 'id="field-number"' in html
    assert 'aria-describedby="hint-number error-number" aria-invalid="true"' in html
    assert '<p class="field-error" id="error-number">最多 8 个字符（或项）</p>' in html
    assert 'role="alert"' in html and 'name="csrf_token"' in html


def test_an_empty_field_is_not_filled_in_and_lists_take_every_value(app):
    with app.test_request_context("/console/x", method="POST", data={"number": " ", "count": "3",
                                                                      "tags": ["早市", "", "夜市"]}):
        form = Form.from_request()
        assert form.load(StallsSchema()) is None and form.error("number") == "请填写此项"
        form = Form({"number": "A1", "count": "3"})
        assert form.load(StallsSchema()) == {"number": "A1", "count": 3, "tags": []}
    with app.test_request_context("/console/x", method="POST", data={"number": "A1", "count": "2",
                                                                      "tags": ["早市", "", "夜市"]}):
        assert Form.from_request().load(StallsSchema())["tags"] == ["早市", "夜市"]


def test_a_service_refusal_lands_on_its_field_or_above_the_form(app):
    form = Form({"number": "A1"})
    form.refuse(APIError(code="VALIDATION_ERROR", details={"fields": {"number": ["摊位号重复"]}}))
    assert form.error("number") == "摊位号重复" and not form.form_errors
    form = Form({"number": "A1"})
    form.refuse(APIError(code="OUT_OF_SCOPE"))
    assert form.form_errors == ["该对象不在您的管辖范围内"] and not form.ok
