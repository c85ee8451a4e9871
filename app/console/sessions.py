"""Console sessions: started by a redeemed login ticket, carried by an HttpOnly cookie, checked
on every console request.

A session ends when
- nothing was requested for CONSOLE_IDLE_MINUTES (the cookie's signed `seen` time is too old),
- CONSOLE_SESSION_HOURS passed since its login,
- its user logs out of the console (the row's ended_at),
- its user's tokens are revoked (log out everywhere bumps users.token_version, which the row
  recorded at login: the same counter that ends the user's bearer tokens), or
- its user no longer holds a console role (grants are read on every request).
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta, timezone

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import delete, or_, update

from app.console.models import ConsoleSession
from app.console.security import cookie_options
from app.core import audit
from app.core.time import utcnow
from app.extensions import db
from app.identity.models import User

SESSION_COOKIE = "xgz_console_session"
COOKIE_SALT = "xgz-console-session-v1"
# A response re-signs the cookie (moving `seen`) at most this often: the inactivity clock
# does not need second precision, and most responses then carry no Set-Cookie.
REFRESH_AFTER_SECONDS = 15
# Sent by a page's background polling (a job's progress bar): such requests do not count as
# activity, so a forgotten tab still times out.
BACKGROUND_HEADER = "X-Console-Background"

CONSOLE_ROLES = ("admin", "regulator", "market_manager", "branch_secretary")


def console_grants(user) -> list:
    """The grants that let `user` into the console (any scope: each page checks the object)."""
    return [grant for grant in user.grants if grant.role in CONSOLE_ROLES]


def may_use_console(user) -> bool:
    return bool(console_grants(user))


@dataclass
class Verdict:
    """What the session cookie of a request amounts to: a live session with its user, or the
    reason there is none ("missing", "expired", "revoked", "no_role")."""

    session: ConsoleSession | None = None
    user: User | None = None
    reason: str | None = None
    seen: int = 0


def _serializer() -> URLSafeSerializer:
    # SECRET_KEY alone: rotating it ends every console session, as it ends every bearer token.
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=COOKIE_SALT)


def _now_epoch() -> int:
    return int(utcnow().replace(tzinfo=timezone.utc).timestamp())


def idle_seconds() -> int:
    return int(current_app.config["CONSOLE_IDLE_MINUTES"] * 60)


def read_session() -> Verdict:
    """The console session this request's cookie names, if it is still alive."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return Verdict(reason="missing")
    try:
        data = _serializer().loads(raw)
    except BadSignature:
        return Verdict(reason="missing")
    if not isinstance(data, dict) or not isinstance(data.get("sid"), str) or not isinstance(data.get("seen"), int):
        return Verdict(reason="missing")
    if _now_epoch() - data["seen"] > idle_seconds():
        return Verdict(reason="expired")
    session = db.session.get(ConsoleSession, data["sid"])
    if session is None or session.ended_at is not None:
        return Verdict(reason="revoked")
    if utcnow() - session.created_at > timedelta(hours=current_app.config["CONSOLE_SESSION_HOURS"]):
        return Verdict(reason="expired")
    user = db.session.get(User, session.user_id)
    if user is None or user.token_version != session.token_version:
        return Verdict(reason="revoked")
    if not may_use_console(user):
        return Verdict(reason="no_role")
    return Verdict(session=session, user=user, seen=data["seen"])


def start_session(user: User, via: str) -> ConsoleSession:
    """A new session for `user` (the caller checked the ticket and the role); audited."""
    _purge_old_sessions()
    session = ConsoleSession(id=secrets.token_urlsafe(18), user_id=user.id, token_version=user.token_version,
                             via=via, created_at=utcnow())
    db.session.add(session)
    db.session.flush()
    audit.record("console.login", "user", user.id, actor=user, after={"via": via})
    return session


def end_session(session: ConsoleSession, user: User) -> None:
    """Log out of the console (this browser only); audited."""
    db.session.execute(update(ConsoleSession).where(ConsoleSession.id == session.id,
                                                    ConsoleSession.ended_at.is_(None)).values(ended_at=utcnow()))
    audit.record("console.logout", "user", user.id, actor=user)


def _purge_old_sessions() -> None:
    """Rows of sessions that can no longer be used, a day after that: kept that long for
    whoever reads the table after an incident, then gone (run at each login, cheaply indexed)."""
    cutoff = utcnow() - timedelta(hours=current_app.config["CONSOLE_SESSION_HOURS"] + 24)
    db.session.execute(delete(ConsoleSession).where(or_(ConsoleSession.created_at < cutoff,
                                                        ConsoleSession.ended_at < cutoff)))


def set_cookie(response, session: ConsoleSession) -> None:
    value = _serializer().dumps({"sid": session.id, "seen": _now_epoch()})
    response.set_cookie(SESSION_COOKIE, value, **cookie_options(idle_seconds()))


def refresh_cookie(response, verdict: Verdict) -> None:
    """Move the inactivity clock: this request was activity (unless a page's background poll)."""
    if request.headers.get(BACKGROUND_HEADER) or verdict.session is None:
        return
    if SESSION_COOKIE in {cookie.split("=", 1)[0] for cookie in response.headers.getlist("Set-Cookie")}:
        return  # the view set or cleared it itself (login, logout)
    if _now_epoch() - verdict.seen >= REFRESH_AFTER_SECONDS:
        set_cookie(response, verdict.session)


def clear_cookie(response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=cookie_options(None)["path"], httponly=True, samesite="Lax",
                           secure=request.is_secure)

