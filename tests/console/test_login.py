"""Issue 15 item 1 over the Flask test client: scan-login tickets (one-time, short-lived, bound to
the browser), who may enter, console sessions (cookie, inactivity, revocation), CSRF, next=."""
from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from tests.conftest import error_code
from tests.console.conftest import csrf_of, ticket_of


def _set_cookies(response) -> dict[str, str]:
    return {header.split("=", 1)[0]: header for header in response.headers.getlist("Set-Cookie")}


def test_scan_login_starts_a_session_with_a_safe_cookie(app, client, console):
    phone = console.auth.login("reg", role="regulator", scope=None)
    ticket, csrf = console.login_page("/console/?tab=scopes")
    status = client.get(f"/console/login/tickets/{ticket}", headers={"Accept": "application/json"})
    assert status.get_json()["status"] == "pending"

    confirmed = console.confirm(ticket, phone)
    assert confirmed.status_code == 200 and confirmed.get_json()["status"] == "confirmed"
    assert client.get(f"/console/login/tickets/{ticket}").get_json()["status"] == "confirmed"

    response = console.redeem(ticket, csrf, "/console/?tab=scopes")
    assert response.status_code == 303 and response.headers["Location"] == "/console/?tab=scopes"
    cookie = _set_cookies(response)["xgz_console_session"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain http (development)

    home = client.get("/console/")
    assert home.status_code == 200
    html = home.get_data(as_text=True)
    assert "市场监管人员" in html and "欢迎" in html
    assert home.headers["Cache-Control"] == "no-store" and "frame-ancestors 'none'" in home.headers[
        "Content-Security-Policy"]


def test_cookie_is_secure_over_https(app, auth):
    client = FlaskClient(app, use_cookies=True)
    phone = auth.login("reg", role="admin")
    page = client.get("/console/login", base_url="https://console.example.cn")
    assert "Secure" in _set_cookies(page)["xgz_console_browser"]
    html = page.get_data(as_text=True)
    ticket = ticket_of(html)
    client.post(f"/api/v1/console-login/{ticket}/confirm", headers=phone.headers)
    response = client.post(f"/console/login/tickets/{ticket}/session", base_url="https://console.example.cn",
                           data={"csrf_token": csrf_of(html)})
    assert response.status_code == 303
    assert "Secure" in _set_cookies(response)["xgz_console_session"]


def test_a_ticket_is_used_once_and_only_by_its_browser(app, client, console):
    phone = console.auth.login("admin1", role="admin")
    ticket, csrf = console.login_page()
    assert console.confirm(ticket, phone).status_code == 200
    again = console.confirm(ticket, phone)
    assert again.status_code == 409 and error_code(again) == "CONSOLE_TICKET_USED"

    other = FlaskClient(app, use_cookies=True)  # another browser: its own binding cookie
    other_csrf = csrf_of(other.get("/console/login").get_data(as_text=True))
    stolen = other.post(f"/console/login/tickets/{ticket}/session", data={"csrf_token": other_csrf})
    assert stolen.status_code == 403
    assert "该登录二维码是为另一个浏览器生成的" in stolen.get_data(as_text=True)
    assert other.get(f"/console/login/tickets/{ticket}", headers={"Accept": "application/json"}).status_code == 404

    assert console.redeem(ticket, csrf).status_code == 303
    twice = console.redeem(ticket, csrf)
    assert twice.status_code == 409 and "已使用过" in twice.get_data(as_text=True)


def test_redeeming_before_the_phone_confirmed_is_refused(client, console):
    ticket, csrf = console.login_page()
    response = console.redeem(ticket, csrf)
    assert response.status_code == 409 and "尚未在小程序中确认登录" in response.get_data(as_text=True)


def test_an_expired_ticket_cannot_be_confirmed_nor_redeemed(app, client, console, clock):
    clock.set(clock.now())
    phone = console.auth.login("admin1", role="admin")
    ticket, csrf = console.login_page()
    clock.advance(timedelta(seconds=app.config["CONSOLE_LOGIN_TICKET_SECONDS"] + 1))
    response = console.confirm(ticket, phone)
    assert response.status_code == 410 and error_code(response) == "CONSOLE_TICKET_EXPIRED"
    assert "过期" in response.get_json()["error"]["message"]
    assert client.get(f"/console/login/tickets/{ticket}").get_json()["status"] == "expired"
    assert console.redeem(ticket, csrf).status_code == 410


def test_unknown_ticket_is_404_in_the_envelope(console):
    phone = console.auth.login("admin1", role="admin")
    response = console.confirm("no-such-ticket", phone)
    assert response.status_code == 404 and error_code(response) == "CONSOLE_TICKET_NOT_FOUND"


@pytest.mark.parametrize("role", [None, "merchant", "rider"])
def test_a_user_without_a_console_role_is_told_why_on_phone_and_page(client, console, role):
    phone = console.auth.login("shopkeeper", role=role)
    ticket, csrf = console.login_page()
    response = console.confirm(ticket, phone)
    assert response.status_code == 403 and error_code(response) == "CONSOLE_ROLE_REQUIRED"
    message = response.get_json()["error"]["message"]
    assert "没有管理后台的权限" in message and "市场监管人员" in message
    status = client.get(f"/console/login/tickets/{ticket}").get_json()
    assert status == {"status": "refused", "code": "CONSOLE_ROLE_REQUIRED", "message": message}
    refused = console.redeem(ticket, csrf)
    assert refused.status_code == 403 and "没有管理后台的权限" in refused.get_data(as_text=True)
    assert client.get("/console/").status_code == 303


@pytest.mark.parametrize("role,scope", [("regulator", "region:450400"), ("market_manager", "market:{market}"),
                                        ("branch_secretary", "org:{org}"), ("admin", None)])
def test_every_console_role_gets_in_and_sees_its_scope(client, console, make_market, db, role, scope):
    from app.orgs.models import PartyOrg

    market = make_market()
    org = PartyOrg(name="万秀区综合市场党支部", kind="branch", sector="market", region_code="450403")
    db.session.add(org)
    db.session.commit()
    console.login("boss", role=role, scope=scope.format(market=market.id, org=org.id) if scope else None)
    html = client.get("/console/").get_data(as_text=True)
    expected = {"regulator": "梧州市（450400）", "market_manager": "市场：梧州市万秀区综合市场",
                "branch_secretary": "组织：万秀区综合市场党支部", "admin": "全部地区"}[role]
    assert expected in html


def test_without_a_session_pages_go_to_login_and_fetches_get_401(client):
    page = client.get("/console/?tab=x")
    assert page.status_code == 303 and page.headers["Location"] == "/console/login?next=%2Fconsole%2F%3Ftab%3Dx"
    fetch = client.get("/console/", headers={"Accept": "application/json"})
    assert fetch.status_code == 401 and error_code(fetch) == "CONSOLE_LOGIN_REQUIRED"
    assert fetch.get_json()["error"]["details"]["login_url"] == "/console/login"


def test_inactivity_ends_the_session_and_login_returns_to_the_page(app, client, console, clock):
    clock.set(clock.now())
    phone = console.login("admin1", role="admin")
    idle = timedelta(minutes=app.config["CONSOLE_IDLE_MINUTES"])
    clock.advance(idle - timedelta(minutes=1))
    assert client.get("/console/").status_code == 200  # activity moves the inactivity clock
    clock.advance(idle - timedelta(minutes=1))
    assert client.get("/console/").status_code == 200
    clock.advance(idle + timedelta(seconds=1))
    response = client.get("/console/?tab=scopes")
    assert response.status_code == 303
    assert response.headers["Location"] == "/console/login?next=%2Fconsole%2F%3Ftab%3Dscopes&reason=expired"
    assert "xgz_console_session=;" in _set_cookies(response)["xgz_console_session"]  # cleared
    login = client.get(response.headers["Location"])
    html = login.get_data(as_text=True)
    assert "登录已超时" in html and 'name="next" value="/console/?tab=scopes"' in html
    ticket, csrf = ticket_of(html), csrf_of(html)
    console.confirm(ticket, phone)
    back = console.redeem(ticket, csrf, "/console/?tab=scopes")
    assert back.headers["Location"] == "/console/?tab=scopes"


def test_background_polls_do_not_count_as_activity(app, client, console, clock):
    clock.set(clock.now())
    console.login("admin1", role="admin")
    for _ in range(3):
        clock.advance(timedelta(minutes=app.config["CONSOLE_IDLE_MINUTES"] / 2))
        poll = client.get("/console/", headers={"X-Console-Background": "1"})
    assert poll.status_code == 303 and "reason=expired" in poll.headers["Location"]


def test_a_session_ends_after_its_absolute_lifetime(app, client, console, clock):
    clock.set(clock.now())
    console.login("admin1", role="admin")
    for _ in range(int(app.config["CONSOLE_SESSION_HOURS"] * 60 / 20)):
        clock.advance(timedelta(minutes=20))
        client.get("/console/")
    clock.advance(timedelta(minutes=20))
    assert client.get("/console/").status_code == 303


def test_logging_out_everywhere_on_the_phone_ends_the_console_session(client, console):
    phone = console.login("admin1", role="admin")
    assert client.post("/api/v1/auth/logout", json={"all": True}, headers=phone.headers).status_code == 204
    response = client.get("/console/")
    assert response.status_code == 303 and "reason=revoked" in response.headers["Location"]
    assert "登录已失效" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_removing_the_role_ends_the_console_session(app, client, console, regions):
    console.login("reg", role="regulator", scope="region:450400")
    result = app.test_cli_runner().invoke(args=["users", "revoke", "reg", "regulator", "--scope", "region:450400",
                                                "--reason", "调岗"])
    assert result.exit_code == 0, result.output
    response = client.get("/console/")
    assert response.status_code == 303 and "reason=no_role" in response.headers["Location"]
    assert "没有管理后台的权限" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_logout_needs_the_csrf_token_and_ends_only_this_session(app, client, console):
    phone = console.login("admin1", role="admin")
    other = FlaskClient(app, use_cookies=True)
    ConsoleOther = type(console)(other, console.auth)
    ticket, csrf = ConsoleOther.login_page()
    ConsoleOther.confirm(ticket, phone)
    ConsoleOther.redeem(ticket, csrf)

    refused = client.post("/console/logout")
    assert refused.status_code == 403
    page = refused.get_data(as_text=True)
    assert "安全校验未通过" in page and "CONSOLE_CSRF_FAILED" in page
    wrong = client.post("/console/logout", data={"csrf_token": "0" * 64})
    assert wrong.status_code == 403
    as_fetch = client.post("/console/logout", headers={"X-CSRF-Token": "nope", "Accept": "application/json"})
    assert as_fetch.status_code == 403 and error_code(as_fetch) == "CONSOLE_CSRF_FAILED"
    assert client.get("/console/").status_code == 200  # still signed in

    done = client.post("/console/logout", data={"csrf_token": console.csrf()})
    assert done.status_code == 303 and done.headers["Location"] == "/console/login?reason=logout"
    assert client.get("/console/").status_code == 303
    assert other.get("/console/").status_code == 200  # the other browser's session goes on


def test_fetch_sends_the_csrf_token_in_a_header(client, console):
    console.login("admin1", role="admin")
    response = client.post("/console/logout", headers={"X-CSRF-Token": console.csrf()})
    assert response.status_code == 303


def test_the_login_pages_own_forms_need_their_csrf_token(client, console):
    phone = console.auth.login("admin1", role="admin")
    ticket, csrf = console.login_page()
    console.confirm(ticket, phone)
    assert console.redeem(ticket, "").status_code == 403
    assert console.redeem(ticket, csrf[:-1] + ("0" if csrf[-1] != "0" else "1")).status_code == 403
    fresh = FlaskClient(client.application, use_cookies=True)  # no browser cookie at all
    assert fresh.post(f"/console/login/tickets/{ticket}/session", data={"csrf_token": csrf}).status_code == 403
    assert console.redeem(ticket, csrf).status_code == 303


@pytest.mark.parametrize("value,expected", [
    ("/console/markets?q=梧州", "/console/markets?q=梧州"),
    ("/console/", "/console/"),
    (None, "/console/"), ("", "/console/"),
    ("https://evil.example/console/", "/console/"), ("//evil.example/console/", "/console/"),
    ("/\\evil.example", "/console/"), ("/console/../api/v1/me", "/console/"),
    ("/console/%2e%2e/api", "/console/"), ("/console/%2F%2Fevil", "/console/"),
    ("/api/v1/me", "/console/"), ("/console/login?next=/console/", "/console/"),
    ("javascript:alert(1)", "/console/"), ("/console/\r\nSet-Cookie: x=1", "/console/"),
    ("/console//evil", "/console/"), ("/console/x#frag", "/console/"),
])
def test_next_is_a_local_console_page_or_home(app, value, expected):
    from app.console.security import safe_next

    assert safe_next(value) == expected


def test_next_from_outside_is_ignored_after_login(client, console):
    phone = console.auth.login("admin1", role="admin")
    html = client.get("/console/login?next=https://evil.example/").get_data(as_text=True)
    assert 'name="next" value="/console/"' in html
    ticket = ticket_of(html)
    console.confirm(ticket, phone)
    response = console.redeem(ticket, csrf_of(html), "https://evil.example/")  # a tampered form
    assert response.headers["Location"] == "/console/"


def test_a_signed_in_user_opening_login_goes_to_next(client, console):
    console.login("admin1", role="admin")
    response = client.get("/console/login?next=/console/?tab=1")
    assert response.status_code == 302 and response.headers["Location"] == "/console/?tab=1"


def test_pages_use_only_local_assets(app, client, console):
    console.login("admin1", role="admin")
    pages = [client.get("/console/").get_data(as_text=True),
             FlaskClient(app, use_cookies=True).get("/console/login").get_data(as_text=True)]
    for html in pages:
        assert "http://" not in html and "https://" not in html
    assert client.get("/console/static/console.css").status_code == 200
    assert client.get("/console/static/console.js").status_code == 200


def test_a_phone_camera_scanning_the_code_is_pointed_to_the_mini_program(client, console):
    ticket, _ = console.login_page()
    page = client.get(f"/console/scan/{ticket}")
    assert page.status_code == 200 and "小程序" in page.get_data(as_text=True)
    assert client.get(f"/console/login/tickets/{ticket}").get_json()["status"] == "pending"  # untouched


def test_the_qr_code_carries_the_scan_url(app, client, console):
    import base64
    import io
    import re

    import zxingcpp
    from PIL import Image

    html = client.get("/console/login").get_data(as_text=True)
    ticket = ticket_of(html)
    data = base64.b64decode(re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1))
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(data)))
    assert [code.text for code in decoded] == [f"{app.config['PUBLIC_BASE_URL']}/console/scan/{ticket}"]


def test_confirm_is_documented_in_openapi(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/console-login/{ticket}/confirm"]["post"]
    assert operation["security"] == [{"bearerAuth": []}]
    assert {"200", "403", "404", "409", "410"} <= set(operation["responses"])
    assert "扫描" in operation["description"] or "扫描" in operation.get("summary", "")
