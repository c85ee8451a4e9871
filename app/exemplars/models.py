"""A region's 示范 criteria and the titles regulators confer (示范摊位, 党员示范户, 示范市场)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.content import COMMENT, PROFILE, public_text
from app.core.db import TimestampMixin
from app.extensions import db
from app.markets.models import Market, Stall

__all__ = ["ExemplarCriteria", "ExemplarTitle", "KINDS", "STALL_TITLES", "MARKET_TITLE", "TITLE_STATUSES"]

KINDS = ("stall", "market")
STALL_TITLES = ("示范摊位", "党员示范户")
MARKET_TITLE = "示范市场"
# What a client sees: "active" while in its year and not withdrawn ("suspended" is a matter of
# the criteria at the moment and is shown on the badge, not stored).
TITLE_STATUSES = ("active", "withdrawn", "ended")


class ExemplarCriteria(TimestampMixin, db.Model):
    """The criteria a regulator set for a region; regions below without their own inherit them."""

    __tablename__ = "exemplar_criteria"

    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"), primary_key=True)
    # 示范摊位: licence and every permit shown and in force.
    require_credentials: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    # A pledge in force, without a break, for at least this many days.
    pledge_days: Mapped[int] = mapped_column(Integer, nullable=False, default=180)
    # No upheld complaint (or rider report) on the badge: the badge's own 90-day window.
    no_upheld: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    # The operator a verified party member, for every stall title (党员示范户 always needs it).
    require_party_member: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # 示范市场: shares in percent of its stalls in business (held, not closed).
    market_full_badge_pct: Mapped[int] = mapped_column(Integer, nullable=False, default=80)
    market_pledge_pct: Mapped[int] = mapped_column(Integer, nullable=False, default=80)
    market_require_party_org: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    market_min_stalls: Mapped[int] = mapped_column(Integer, nullable=False, default=5)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class ExemplarTitle(TimestampMixin, db.Model):
    """One conferral, for a year from the day it was conferred (through the end of the local day
    before its anniversary). A stall's title belongs to the entity that held the stall then: a
    new holder does not inherit it."""

    __tablename__ = "exemplar_titles"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), nullable=False)
    title: Mapped[str] = mapped_column(String(16), nullable=False)
    stall_id: Mapped[int | None] = mapped_column(ForeignKey("stalls.id"), index=True)
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"))
    market_id: Mapped[int] = mapped_column(ForeignKey("markets.id"), nullable=False, index=True)
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"), nullable=False, index=True)
    citation: Mapped[str] = mapped_column(Text, nullable=False, info=public_text(PROFILE))
    conferred_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    ends_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    conferred_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    # The criteria as they stood when conferred (the badge applies the region's current ones).
    criteria: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime)
    withdrawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    withdraw_reason: Mapped[str | None] = mapped_column(Text, info=public_text(COMMENT))
    # "stall:<id>" / "market:<id>" while the title may still be in force, NULL once withdrawn or
    # superseded after its year: the unique index keeps one title per object, even under races.
    active_key: Mapped[str | None] = mapped_column(String(24), unique=True)

    stall: Mapped[Stall | None] = relationship(lazy="selectin")
    market: Mapped[Market] = relationship(lazy="selectin")

    __table_args__ = (Index("ix_exemplar_titles_kind_region", "kind", "region_code"),)

    def status_at(self, now: datetime) -> str:
        if self.withdrawn_at is not None:
            return "withdrawn"
        return "ended" if now >= self.ends_at else "active"
