"""The console's login tickets and sessions (管理后台登录).

Both live in the database, not in the key-value store: without Redis that store is a dict per
process, and `make run` serves the console from two gunicorn workers (a ticket made by one
must be confirmed and redeemed through any of them)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.time import utcnow
from app.extensions import db

TICKET_KINDS = ("scan", "link")
# pending -> confirmed (the phone said yes) -> used (a browser session started from it);
# pending -> refused (someone without a console role scanned it: the page says why).
TICKET_STATUSES = ("pending", "confirmed", "refused", "used")


class ConsoleLoginTicket(db.Model):
    """A one-time login ticket: the QR code on /console/login (kind "scan", bound to the browser
    that asked for it), or a link printed by `flask console login-link` (kind "link", made for
    one user and bound to the browser that redeems it)."""

    __tablename__ = "console_login_tickets"
    __table_args__ = (Index("ix_console_login_tickets_expires_at", "expires_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket: Mapped[str] = mapped_column(String(43), nullable=False, unique=True)  # random; in the QR code and URLs
    kind: Mapped[str] = mapped_column(String(8), nullable=False)
    # sha256 of the browser-binding cookie: only that browser may redeem the ticket.
    browser_hash: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    refusal: Mapped[str | None] = mapped_column(String(40))  # the error code a refused scan got
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)


class ConsoleSession(db.Model):
    """A browser's console session. The cookie carries its id, signed, with the time of the
    last request (inactivity); the row says whose it is, under which token_version of the user
    it began (log out everywhere ends it), and whether it was ended (log out)."""

    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_user_id", "user_id"),
                      Index("ix_console_sessions_created_at", "created_at"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random, the cookie's subject
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    token_version: Mapped[int] = mapped_column(Integer, nullable=False)
    via: Mapped[str] = mapped_column(String(8), nullable=False)  # "scan" or "link"
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)


__all__ = ["ConsoleLoginTicket", "ConsoleSession", "TICKET_KINDS", "TICKET_STATUSES"]
