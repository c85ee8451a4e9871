"""Login tickets (扫码登录): one-time, short-lived, bound to a browser.

Scan: the login page asks for a ticket (bound to its browser cookie) and shows it as a QR code;
the mini-program scans it and confirms with the user's bearer token; the page, polling, sees
"confirmed" and redeems it, which starts the console session. Link: `flask console login-link`
makes a ticket already confirmed for one user; the first browser to redeem it gets the session.
Every state change is a compare-and-set on the row, so a ticket is redeemed at most once
whatever races."""
from __future__ import annotations

import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, select, update

from app.console.models import ConsoleLoginTicket
from app.console.security import browser_hash
from app.console.sessions import may_use_console
from app.core.errors import APIError
from app.core.time import utcnow
from app.extensions import db
from app.identity.models import User

# A phone that confirmed in the ticket's last seconds still gets its login: the page polls
# every two seconds, so it may only come to redeem just after the expiry.
REDEEM_GRACE = timedelta(seconds=30)


def _new_ticket_value() -> str:
    return secrets.token_urlsafe(24)


def scan_url(ticket: str) -> str:
    """What the QR code carries: an https URL whose last segment is the ticket. The mini-program
    takes the segment; a phone's own camera opens a page that says to use the mini-program."""
    return f"{current_app.config['PUBLIC_BASE_URL']}/console/scan/{ticket}"


def new_scan_ticket(browser_id: str) -> ConsoleLoginTicket:
    _purge_expired()
    now = utcnow()
    row = ConsoleLoginTicket(ticket=_new_ticket_value(), kind="scan", browser_hash=browser_hash(browser_id),
                             status="pending", created_at=now,
                             expires_at=now + timedelta(seconds=current_app.config["CONSOLE_LOGIN_TICKET_SECONDS"]))
    db.session.add(row)
    db.session.flush()
    return row


def new_login_link(user: User) -> ConsoleLoginTicket:
    """A ticket already confirmed for `user` (the first admin has no console yet to scan from)."""
    if not may_use_console(user):
        raise APIError(code="CONSOLE_ROLE_REQUIRED")
    now = utcnow()
    row = ConsoleLoginTicket(ticket=_new_ticket_value(), kind="link", status="confirmed", user_id=user.id,
                             created_at=now, confirmed_at=now,
                             expires_at=now + timedelta(minutes=current_app.config["CONSOLE_LOGIN_LINK_MINUTES"]))
    db.session.add(row)
    db.session.flush()
    return row


def _find(ticket: str, kind: str) -> ConsoleLoginTicket:
    row = db.session.scalar(select(ConsoleLoginTicket).where(ConsoleLoginTicket.ticket == ticket))
    if row is None or row.kind != kind:
        raise APIError(code="CONSOLE_TICKET_NOT_FOUND")
    return row


def confirm(ticket: str, user: User) -> ConsoleLoginTicket:
    """The phone says yes (POST /api/v1/console-login/{ticket}/confirm). A user without a
    console role is refused, and the refusal is noted on the ticket so the login page can say why."""
    row = _find(ticket, "scan")
    now = utcnow()
    if row.status == "pending" and row.expires_at <= now:
        raise APIError(code="CONSOLE_TICKET_EXPIRED")
    if row.status != "pending":
        raise APIError(code="CONSOLE_TICKET_USED")
    if not may_use_console(user):
        _note_refusal(row.id, user.id, "CONSOLE_ROLE_REQUIRED")
        raise APIError(code="CONSOLE_ROLE_REQUIRED")
    changed = db.session.execute(
        update(ConsoleLoginTicket)
        .where(ConsoleLoginTicket.id == row.id, ConsoleLoginTicket.status == "pending",
               ConsoleLoginTicket.expires_at > now)
        .values(status="confirmed", user_id=user.id, confirmed_at=now)
        .execution_options(synchronize_session=False)).rowcount
    if changed != 1:  # another phone (or the clock) got there between the read and the write
        raise APIError(code="CONSOLE_TICKET_USED")
    return row


def _note_refusal(ticket_id: int, user_id: int, code: str) -> None:
    """In a transaction of its own: the request's rolls back with the refusal it answers."""
    try:
        with db.engine.begin() as connection:
            connection.execute(update(ConsoleLoginTicket)
                               .where(ConsoleLoginTicket.id == ticket_id, ConsoleLoginTicket.status == "pending")
                               .values(status="refused", user_id=user_id, refusal=code))
    except Exception:  # the note only helps the page explain; it must not turn a 403 into a 500
        current_app.logger.warning("could not note the refused console login %s", ticket_id)


def status_for_browser(ticket: str, browser_id: str | None) -> dict:
    """What the login page, polling, may know of its own ticket: pending, confirmed, refused
    (with the reason) or expired. Another browser's ticket is not found."""
    row = _find(ticket, "scan")
    if browser_id is None or row.browser_hash != browser_hash(browser_id):
        raise APIError(code="CONSOLE_TICKET_NOT_FOUND")
    now = utcnow()
    if row.status == "refused":
        return {"status": "refused", "code": row.refusal, "message": _message(row.refusal)}
    if row.status == "used":
        return {"status": "used", "code": "CONSOLE_TICKET_USED", "message": _message("CONSOLE_TICKET_USED")}
    if row.status == "pending" and row.expires_at <= now or row.status == "confirmed" and _past_grace(row, now):
        return {"status": "expired", "code": "CONSOLE_TICKET_EXPIRED", "message": _message("CONSOLE_TICKET_EXPIRED")}
    return {"status": row.status, "code": None, "message": None}


# A login link's refusals name the link, not a QR code to refresh.
_LINK_MESSAGES = {"CONSOLE_TICKET_USED": "该登录链接已使用过，请让管理员重新生成（flask console login-link）",
                  "CONSOLE_TICKET_EXPIRED": "该登录链接已过期，请让管理员重新生成（flask console login-link）"}


def redeem(ticket: str, kind: str, browser_id: str | None) -> tuple[User, ConsoleLoginTicket]:
    """Use a confirmed ticket once, from the browser it is bound to (a link binds to the first
    browser that redeems it). Returns the user to start a session for."""
    try:
        return _redeem(_find(ticket, kind), kind, browser_id)
    except APIError as refusal:
        if kind == "link" and refusal.code in _LINK_MESSAGES:
            raise APIError(code=refusal.code, message=_LINK_MESSAGES[refusal.code]) from None
        raise


def _redeem(row: ConsoleLoginTicket, kind: str, browser_id: str | None) -> tuple[User, ConsoleLoginTicket]:
    if browser_id is None:
        raise APIError(code="CONSOLE_TICKET_OTHER_BROWSER")
    mine = browser_hash(browser_id)
    if kind == "scan" and row.browser_hash != mine:
        raise APIError(code="CONSOLE_TICKET_OTHER_BROWSER")
    now = utcnow()
    if row.status == "used":
        raise APIError(code="CONSOLE_TICKET_USED")
    if row.status == "refused":
        raise APIError(code=row.refusal or "CONSOLE_ROLE_REQUIRED")
    if row.status == "pending":
        raise APIError(code="CONSOLE_TICKET_EXPIRED" if row.expires_at <= now else "CONSOLE_TICKET_NOT_CONFIRMED")
    if _past_grace(row, now):
        raise APIError(code="CONSOLE_TICKET_EXPIRED")
    user = db.session.get(User, row.user_id)
    if user is None or not may_use_console(user):  # the role was withdrawn since the phone confirmed
        raise APIError(code="CONSOLE_ROLE_REQUIRED")
    changed = db.session.execute(
        update(ConsoleLoginTicket)
        .where(ConsoleLoginTicket.id == row.id, ConsoleLoginTicket.status == "confirmed")
        .values(status="used", used_at=now, browser_hash=mine)
        .execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        raise APIError(code="CONSOLE_TICKET_USED")
    return user, row


def _past_grace(row: ConsoleLoginTicket, now) -> bool:
    grace = REDEEM_GRACE if row.kind == "scan" else timedelta(0)
    return row.expires_at + grace <= now


def _message(code: str | None) -> str:
    from app.core.errors import CODES

    return CODES.get(code or "", CODES["CONSOLE_ROLE_REQUIRED"])[1]


def _purge_expired() -> None:
    """Tickets a day past their expiry are of no use to anyone (run as tickets are made)."""
    db.session.execute(delete(ConsoleLoginTicket).where(ConsoleLoginTicket.expires_at < utcnow() - timedelta(days=1)))
