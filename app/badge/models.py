"""The badge's stored projection: per stall, the ready bytes of its public badge."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db

__all__ = ["StallBadge"]


class StallBadge(db.Model):
    """Written by `app.badge.cache.changed` in the writer's transaction (and again on a read
    once `changes_at` has passed, or by the sweep): a read is one indexed query of these bytes."""

    __tablename__ = "stall_badges"

    stall_id: Mapped[int] = mapped_column(ForeignKey("stalls.id", ondelete="CASCADE"), primary_key=True)
    token: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    # The instant the badge changes by time alone (an expiry, a complaint leaving its window).
    changes_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    # The verdict's level (good / partial / none), for managers' lists filtered by it.
    verdict_level: Mapped[str | None] = mapped_column(String(16))
    computed_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    body_json: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    body_html: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
