"""The reminder outbox (提醒发件箱, also the in-app inbox) and the subscribe-message consent ledger."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.time import utcnow
from app.extensions import db

__all__ = ["Notification", "SubscriptionConsent", "SchedulerHeartbeat", "NOTIFICATION_STATUSES", "CHANNELS"]

# pending: waiting for the dispatcher; sending: claimed by one dispatcher (lease in claimed_at);
# sent: WeChat accepted it; failed: gave up (attempts exhausted, a final WeChat error, or an
# attempt whose outcome is unknown after a crash); no_consent: inbox only, no consent left / 43101.
NOTIFICATION_STATUSES = ("pending", "sending", "sent", "failed", "no_consent")
# wechat: subscribe message + inbox; inbox: inbox only (nothing to push).
CHANNELS = ("wechat", "inbox")


class Notification(db.Model):
    """One reminder to one user. (user, kind, subject, period) is the dedupe key: a sweep that
    runs twice, or two schedulers at once, insert it once (ON CONFLICT DO NOTHING)."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    subject: Mapped[str] = mapped_column(String(64), nullable=False)  # e.g. "credential:42"
    period: Mapped[str] = mapped_column(String(40), nullable=False)   # e.g. "2026-03-31:d7"
    template_key: Mapped[str | None] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(64), nullable=False)
    body: Mapped[str] = mapped_column(String(500), nullable=False)
    page: Mapped[str | None] = mapped_column(String(200))  # mini-program page to open
    # Subscribe-message field values, e.g. {"thing1": "食品经营许可证", "time2": "2026-03-31"}.
    wx_data: Mapped[dict | None] = mapped_column(JSON)
    channel: Mapped[str] = mapped_column(String(16), nullable=False, default="wechat")
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    # Claim fence: only the holder of claim_token may start or finish the send.
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Set (and committed) right before the WeChat call; a stale claim with it set has an
    # unknown outcome and is never sent again (at most once per dedupe key).
    send_started_at: Mapped[datetime | None] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    wx_errcode: Mapped[int | None] = mapped_column(Integer)
    wx_msgid: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(String(200))
    read_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)

    __table_args__ = (
        UniqueConstraint("user_id", "kind", "subject", "period", name="uq_notifications_dedupe"),
        Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_notifications_user_id_id", "user_id", "id"),
        Index("ix_notifications_user_id_read_at", "user_id", "read_at"),
    )


class SubscriptionConsent(db.Model):
    """One-time subscribe-message consents a user has left for a template (一次性订阅):
    each wx.requestSubscribeMessage acceptance adds one, each delivered message uses one."""

    __tablename__ = "subscription_consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    template_key: Mapped[str] = mapped_column(String(32), nullable=False)
    remaining: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("user_id", "template_key", name="uq_subscription_consents_user_template"),
    )


class SchedulerHeartbeat(db.Model):
    """The leading scheduler's sign of life, written every renewal of its lock (~10 s) where
    every host reads it (/readyz, /metrics): the lock itself lives in Redis, a PostgreSQL
    session or a local file, none of which the API hosts can all see."""

    __tablename__ = "scheduler_heartbeats"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)  # the lock's name
    holder: Mapped[str] = mapped_column(String(128), nullable=False)  # host:pid of the leader
    beat_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    leading_since: Mapped[datetime] = mapped_column(DateTime, nullable=False)
