"""Fixtures for the web console's tests, shared by every console page's tests.

- `console`: the console over the Flask test client. `console.login(openid, role, scope)` signs
  the test client in by scanning (the login page's ticket, confirmed over the API with the user's
  bearer token, then redeemed with the page's CSRF token); `console.csrf()` is the token a form
  of the current session must send.
- `page`: a fresh Chromium page (Debian's chromium driven by Playwright, 1280×800, zh-CN);
  `new_page()` makes another one in its own browser context (another browser: own cookies).
- `scan_login`: sign a browser page in the way a person does: open a console page, get sent to
  /console/login, "scan" the QR code (the test plays the phone: it reads the ticket the page
  carries in `data-ticket` and confirms it over the API with a bearer token from the simulator
  login), and wait until the page has brought the browser back where it started.
- `shot(page, name)`: a screenshot into the test's tmp dir (look at them when changing a page).

Browser tests are skipped, with the reason, when chromium is not installed (`make browser`).
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass

import pytest

from tests.web.conftest import live_server  # noqa: F401  the app served on a free port

CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
NO_CHROMIUM = "chromium 未安装（Debian 包 chromium，make browser 会安装）：跳过管理后台的浏览器测试"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
WAIT_MS = 20_000  # the login page polls every 2 s; a loaded machine may take a while

_TICKET = re.compile(r'data-ticket="([^"]+)"')
_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def ticket_of(html: str) -> str:
    return _TICKET.search(html).group(1)


def csrf_of(html: str) -> str:
    found = _CSRF_META.search(html) or _CSRF_FIELD.search(html)
    return found.group(1)


@dataclass
class ConsoleActions:
    """The console through the Flask test client (cookies kept by the client)."""

    client: object
    auth: object

    def login_page(self, next_path: str | None = None):
        response = self.client.get("/console/login", query_string={"next": next_path} if next_path else None)
        assert response.status_code == 200, response.data[:300]
        html = response.get_data(as_text=True)
        return ticket_of(html), csrf_of(html)

    def confirm(self, ticket: str, phone):
        """The mini-program's call after scanning."""
        return self.client.post(f"/api/v1/console-login/{ticket}/confirm", headers=phone.headers)

    def redeem(self, ticket: str, csrf: str, next_path: str = "/console/"):
        return self.client.post(f"/console/login/tickets/{ticket}/session",
                                data={"csrf_token": csrf, "next": next_path})

    def login(self, openid: str = "console-admin", role: str | None = "admin", scope: str | None = None):
        """Sign the test client in by scanning; returns the phone (bearer token) that confirmed."""
        phone = self.auth.login(openid, role=role, scope=scope)
        ticket, csrf = self.login_page()
        assert self.confirm(ticket, phone).status_code == 200
        response = self.redeem(ticket, csrf)
        assert response.status_code == 303 and response.headers["Location"] == "/console/", response.data[:300]
        return phone

    def csrf(self, path: str = "/console/") -> str:
        response = self.client.get(path)
        assert response.status_code == 200, response.headers.get("Location")
        return csrf_of(response.get_data(as_text=True))


@pytest.fixture
def console(client, auth) -> ConsoleActions:
    return ConsoleActions(client, auth)


# -- the browser ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def chromium():
    if CHROMIUM is None:
        pytest.skip(NO_CHROMIUM)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(chromium):
    """new_page(viewport=DESKTOP): a page in a browser context of its own (its own cookies)."""
    contexts = []

    def make(viewport: dict | None = None):
        context = chromium.new_context(viewport=viewport or DESKTOP, locale="zh-CN", timezone_id="Asia/Shanghai")
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture
def scan_login(live_server, auth, client):  # noqa: F811
    """scan_login(page, openid, role, scope, path="/console/") -> the phone that confirmed."""

    def login(page, openid: str = "console-admin", role: str | None = "admin", scope: str | None = None,
              path: str = "/console/"):
        phone = auth.login(openid, role=role, scope=scope)
        page.goto(live_server + path)
        page.wait_for_url(re.compile(r"/console/login"))
        ticket = page.get_attribute("#scan-login", "data-ticket")
        response = client.post(f"/api/v1/console-login/{ticket}/confirm", headers=phone.headers)
        assert response.status_code == 200, response.get_json()
        page.wait_for_url(live_server + path)
        return phone

    return login


@pytest.fixture
def shot(tmp_path):
    """shot(page, "login-desktop") -> the PNG's path, in the test's tmp dir."""

    def take(page, name: str):
        path = tmp_path / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
