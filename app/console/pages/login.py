"""扫码登录: the login page and its QR code, the page's polling, redeeming a confirmed ticket,
the login link of `flask console login-link`, and log out."""
from __future__ import annotations

import base64

from flask import g, jsonify, redirect, request, url_for

import app.console.sessions as sessions
import app.console.tickets as tickets
from app.console.blueprint import LOGIN_REASONS, bp, public, render_page
from app.console.errors import ROLE_REQUIRED_MESSAGE
from app.console.security import HOME, browser_id, existing_browser_id, login_url, safe_next
from app.core import ratelimit
from app.core.transactions import transactional

# Each visit of the login page makes a ticket: generous for an office behind one address,
# tight enough that nobody fills the table from a script.
LOGIN_PAGES_PER_MINUTE = 60
QR_BOX = 5  # pixels per module: about 250 px for the ticket's URL


@bp.get("/login")
@public
@transactional
def login():
    next_path = safe_next(request.args.get("next"))
    if g.console_verdict.session is not None:
        return redirect(next_path)
    ratelimit.enforce("console-login-page", request.remote_addr or "-", LOGIN_PAGES_PER_MINUTE, 60)
    ticket = tickets.new_scan_ticket(browser_id())
    png = _qr_png(tickets.scan_url(ticket.ticket))
    notice, notice_kind = _notice(request.args.get("reason"))
    return render_page("console/login.html", title="扫码登录", ticket=ticket, next=next_path,
                       expires_in=int((ticket.expires_at - ticket.created_at).total_seconds()),
                       qr_data_uri="data:image/png;base64," + base64.b64encode(png).decode(),
                       qr_size=int.from_bytes(png[16:20], "big"),  # the PNG header's width
                       notice=notice, notice_kind=notice_kind)


def _qr_png(data: str) -> bytes:
    from app.markets.qr import qr_png

    return qr_png(data, box=QR_BOX)


def _notice(reason: str | None) -> tuple[str | None, str]:
    if reason == "no_role":
        return ROLE_REQUIRED_MESSAGE, "warning"
    if reason == "logout":
        return LOGIN_REASONS["logout"], "info"
    return LOGIN_REASONS.get(reason or ""), "warning"


@bp.get("/login/tickets/<ticket>")
@public
def login_ticket_status(ticket: str):
    """The login page polls this: {status: pending|confirmed|refused|expired|used, code, message}."""
    return jsonify(tickets.status_for_browser(ticket, existing_browser_id()))


@bp.post("/login/tickets/<ticket>/session")
@public
def login_redeem(ticket: str):
    """The phone confirmed: this browser (the one the ticket was made for) gets its session."""
    user, _ = tickets.redeem(ticket, "scan", existing_browser_id())
    return _signed_in(user, "scan", safe_next(request.form.get("next")))


@bp.get("/scan/<ticket>")
@public
def scan_landing(ticket: str):
    """What a phone's own camera opens from the login QR code: a pointer to the mini-program."""
    return render_page("console/message.html", title="请用小程序扫码",
                       message="这是小个专党建管理后台的登录二维码。请在微信中打开「小个专党建」小程序，"
                               "点击「扫码登录管理后台」，再扫描电脑屏幕上的二维码。")


@bp.get("/login/link/<ticket>")
@public
def login_link(ticket: str):
    """A link printed by `flask console login-link`: a button, so that a link preview fetching
    the page (chat apps do) does not use up the one-time link."""
    return render_page("console/message.html", title="登录管理后台",
                       message="这是一次性登录链接，只能使用一次。点击下方按钮在本浏览器中登录管理后台。",
                       action=url_for("console.login_link_redeem", ticket=ticket), action_label="登录管理后台")


@bp.post("/login/link/<ticket>")
@public
def login_link_redeem(ticket: str):
    user, _ = tickets.redeem(ticket, "link", existing_browser_id())
    return _signed_in(user, "link", HOME)


def _signed_in(user, via: str, next_path: str):
    session = sessions.start_session(user, via)
    response = redirect(next_path, 303)
    sessions.set_cookie(response, session)
    return response


@bp.post("/logout")
def logout():
    sessions.end_session(g.console_session, g.console_user)
    response = redirect(login_url(reason="logout"), 303)
    sessions.clear_cookie(response)
    return response
