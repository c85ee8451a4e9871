"""Issue 15 item 1 in real Chromium (Debian's, driven by Playwright): scan-login with the test
playing the phone, refusals the person can read, single-use and browser-bound tickets, expiry,
inactivity, revocation, log out, and screenshots of the pages at desk and phone size."""
import re
from datetime import timedelta

from tests.conftest import error_code
from tests.console.conftest import DESKTOP, PHONE

PATH = "/console/?tab=scopes"


def test_scan_login_end_to_end_with_screenshots(app, live_server, page, new_page, scan_login, shot, regions, client):
    page.goto(f"{live_server}/console/login")
    page.wait_for_selector("#login-state:has-text('等待扫码')")  # the page's script is polling
    assert page.locator("img[alt^='登录二维码']").evaluate("img => img.naturalWidth") > 150
    shot(page, "login-1280x800")
    phone_page = new_page(PHONE)
    phone_page.goto(f"{live_server}/console/login")
    shot(phone_page, "login-390x844")

    phone = scan_login(page, "wang", role="regulator", scope="region:450400", path=PATH)
    assert page.url == live_server + PATH
    assert page.locator(".account-name").inner_text() == "用户{}".format(phone.user_id)  # no name given yet
    client.put("/api/v1/me", json={"real_name": "王小军"}, headers=phone.headers)
    page.reload()
    assert page.locator(".account-name").inner_text() == "王*军"
    assert page.locator(".account-role").inner_text() == "市场监管人员"
    assert "梧州市（450400）" in page.locator("[data-testid=scopes]").inner_text()
    assert page.locator(".nav-link.is-active").inner_text().strip() == "首页"
    for soon in page.locator(".nav-link.is-soon").all():  # sections not built yet say so
        assert "建设中" in soon.inner_text()
    shot(page, "home-1280x800")
    scan_login(phone_page, "wang", role=None, path="/console/")
    assert phone_page.locator(".nav-link.is-active").is_visible()
    shot(phone_page, "home-390x844")


def test_keyboard_reaches_the_navigation_and_focus_is_visible(live_server, page, scan_login):
    scan_login(page, "admin1", role="admin")
    page.keyboard.press("Tab")
    skip = page.locator(".skip-link")
    assert skip.evaluate("el => el === document.activeElement")
    assert skip.bounding_box()["y"] >= 0  # shown when focused
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    focused = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert focused not in ("", "none")


def test_a_user_without_a_console_role_sees_why(live_server, page, client, auth, shot):
    phone = auth.login("shopkeeper", role="merchant")
    page.goto(f"{live_server}/console/login")
    ticket = page.get_attribute("#scan-login", "data-ticket")
    response = client.post(f"/api/v1/console-login/{ticket}/confirm", headers=phone.headers)
    assert response.status_code == 403 and error_code(response) == "CONSOLE_ROLE_REQUIRED"
    state = page.locator("#login-state")
    state.filter(has_text="没有管理后台的权限").wait_for()
    assert "市场监管人员、市场管理方、支部书记和系统管理员" in state.inner_text()
    shot(page, "login-refused-1280x800")
    assert page.url.startswith(f"{live_server}/console/login")


def test_a_ticket_works_once_and_only_in_its_browser(live_server, page, new_page, client, auth):
    phone = auth.login("admin1", role="admin")
    page.goto(f"{live_server}/console/login")
    ticket = page.get_attribute("#scan-login", "data-ticket")
    other = new_page()  # another browser (own cookies) that learnt the ticket
    other.goto(f"{live_server}/console/login")
    assert client.post(f"/api/v1/console-login/{ticket}/confirm", headers=phone.headers).status_code == 200
    stolen = other.evaluate("""ticket => fetch(`/console/login/tickets/${ticket}/session`, {
        method: "POST", headers: {"Accept": "application/json",
                                  "X-CSRF-Token": document.querySelector('meta[name=csrf-token]').content}})
        .then(r => r.json().then(body => [r.status, body.error.code]))""", ticket)
    assert stolen == [403, "CONSOLE_TICKET_OTHER_BROWSER"]
    page.wait_for_url(f"{live_server}/console/")
    again = client.post(f"/api/v1/console-login/{ticket}/confirm", headers=phone.headers)
    assert again.status_code == 409 and error_code(again) == "CONSOLE_TICKET_USED"
    other.goto(f"{live_server}/console/")
    assert "/console/login" in other.url  # still signed out


def test_an_expired_ticket_says_so_and_offers_a_new_code(app, live_server, page, client, auth, clock):
    clock.set(clock.now())
    phone = auth.login("admin1", role="admin")
    page.goto(f"{live_server}/console/login")
    first = page.get_attribute("#scan-login", "data-ticket")
    clock.advance(timedelta(seconds=app.config["CONSOLE_LOGIN_TICKET_SECONDS"] + 1))
    response = client.post(f"/api/v1/console-login/{first}/confirm", headers=phone.headers)
    assert response.status_code == 410 and error_code(response) == "CONSOLE_TICKET_EXPIRED"
    page.locator("#login-state").filter(has_text="已过期").wait_for()
    page.click("#refresh-qr")
    page.wait_for_selector("#login-state:has-text('等待扫码')")
    fresh = page.get_attribute("#scan-login", "data-ticket")
    assert fresh != first
    assert client.post(f"/api/v1/console-login/{fresh}/confirm", headers=phone.headers).status_code == 200
    page.wait_for_url(f"{live_server}/console/")


def test_inactivity_sends_back_to_login_and_then_to_the_page(app, live_server, page, scan_login, client, clock):
    clock.set(clock.now())
    phone = scan_login(page, "admin1", role="admin", path=PATH)
    clock.advance(timedelta(minutes=app.config["CONSOLE_IDLE_MINUTES"], seconds=1))
    page.goto(live_server + PATH)
    page.wait_for_url(re.compile(r"/console/login\?next="))
    assert "登录已超时" in page.locator(".notice").inner_text()
    ticket = page.get_attribute("#scan-login", "data-ticket")
    assert client.post(f"/api/v1/console-login/{ticket}/confirm", headers=phone.headers).status_code == 200
    page.wait_for_url(live_server + PATH)


def test_revoking_the_users_tokens_ends_the_console_session(live_server, page, scan_login, client):
    phone = scan_login(page, "admin1", role="admin")
    assert client.post("/api/v1/auth/logout", json={"all": True}, headers=phone.headers).status_code == 204
    page.reload()
    page.wait_for_url(re.compile(r"/console/login"))
    assert "登录已失效" in page.locator(".notice").inner_text()


def test_log_out(live_server, page, scan_login):
    scan_login(page, "admin1", role="admin")
    page.get_by_role("button", name="退出").click()
    page.wait_for_url(re.compile(r"/console/login\?reason=logout"))
    assert "您已退出管理后台" in page.locator(".notice").inner_text()
    page.goto(f"{live_server}/console/")
    assert "/console/login" in page.url


def test_a_post_without_the_csrf_token_is_refused_in_the_browser(live_server, page, scan_login):
    scan_login(page, "admin1", role="admin")
    answer = page.evaluate("""() => fetch("/console/logout", {method: "POST", headers: {"Accept": "application/json"}})
        .then(r => r.json().then(body => [r.status, body.error.code, body.error.message]))""")
    assert answer[:2] == [403, "CONSOLE_CSRF_FAILED"] and "安全校验" in answer[2]
    with_token = page.evaluate("""() => consoleFetch("/console/logout", {method: "POST"}).then(r => r.url)""")
    assert "/console/login?reason=logout" in with_token


def test_the_login_link_signs_in_once(app, live_server, page, new_page, auth, shot):
    auth.grant("first-admin", "admin")
    result = app.test_cli_runner().invoke(args=["console", "login-link", "first-admin"])
    link = result.stdout.strip()
    page.goto(link.replace(app.config["PUBLIC_BASE_URL"], live_server))
    shot(page, "login-link-1280x800")
    page.get_by_role("button", name="登录管理后台").click()
    page.wait_for_url(f"{live_server}/console/")
    assert page.locator(".account-role").inner_text() == "系统管理员"
    again = new_page(DESKTOP)
    again.goto(link.replace(app.config["PUBLIC_BASE_URL"], live_server))
    again.get_by_role("button", name="登录管理后台").click()
    assert "已使用过" in again.locator(".error-message").inner_text()
    shot(again, "link-used-1280x800")
