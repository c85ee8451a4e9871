"""Integrity pledges (诚信经营承诺): the regulators' versioned templates and the pledges merchants sign.

A pledge keeps a snapshot of the template text it was signed against, so editing a template
never changes what a merchant promised. Its stored status moves pending -> approved | rejected,
approved -> revoked; "expired" is a matter of time (valid_until has passed) and is computed
against the clock wherever the pledge is read, so no batch run is needed to turn it off."""
from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import (JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint, and_, or_, text)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.content import COMMENT, PROFILE, public_text
from app.core.db import TimestampMixin
from app.core.time import utcnow
from app.extensions import db
from app.markets.models import Market, Merchant

__all__ = ["PledgeTemplate", "Pledge", "PLEDGE_STATUSES", "STORED_STATUSES", "ACTIVE_STATUSES",
           "DEFAULT_TERM_MONTHS"]

DEFAULT_TERM_MONTHS = 12
# What a client sees: the stored status, except an approved pledge past valid_until reads "expired".
PLEDGE_STATUSES = ("pending", "approved", "upcoming", "rejected", "revoked", "expired")
# "expired" is also stored once an out-of-date approved pledge is superseded by a new signature,
# so that the one-active-pledge index lets the new one in.
# "upcoming" is never stored: an approved renewal whose term has not begun (it starts when the
# pledge in force ends, so the 诚信承诺 mark never goes dark between them).
STORED_STATUSES = tuple(s for s in PLEDGE_STATUSES if s != "upcoming")
# Stored statuses that keep an entity from signing again (see services.sign_pledge for renewal).
ACTIVE_STATUSES = ("pending", "approved")
STATUS_LABELS = {"pending": "待审核", "approved": "生效中", "upcoming": "已通过，待生效", "rejected": "已驳回",
                 "revoked": "已撤销", "expired": "已到期"}


def new_family_id() -> str:
    return secrets.token_hex(8)


class PledgeTemplate(TimestampMixin, db.Model):
    """A version of a pledge template (承诺书模板). Versions of one template share `family_id`;
    only the newest version of a family may be active, older ones stay for the pledges that
    reference them."""

    __tablename__ = "pledge_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[str] = mapped_column(String(16), nullable=False, default=new_family_id, index=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    title: Mapped[str] = mapped_column(String(100), nullable=False, info=public_text(PROFILE))
    items: Mapped[list[str]] = mapped_column(JSON, nullable=False, info=public_text(PROFILE))
    term_months: Mapped[int] = mapped_column(Integer, nullable=False, default=DEFAULT_TERM_MONTHS)
    # NULL = national (全国); otherwise the region whose regulators keep it.
    region_code: Mapped[str | None] = mapped_column(ForeignKey("regions.code"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    __table_args__ = (UniqueConstraint("family_id", "version", name="uq_pledge_templates_family_version"),)


class Pledge(TimestampMixin, db.Model):
    """One signed pledge of a business entity, reviewed by the market where it holds a stall."""

    __tablename__ = "pledges"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), nullable=False, index=True)
    market_id: Mapped[int] = mapped_column(ForeignKey("markets.id"), nullable=False, index=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("pledge_templates.id"), nullable=False, index=True)
    # Snapshot of the template version as signed.
    template_version: Mapped[int] = mapped_column(Integer, nullable=False)
    title: Mapped[str] = mapped_column(String(100), nullable=False)
    items: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    term_months: Mapped[int] = mapped_column(Integer, nullable=False)
    extra_commitments: Mapped[str | None] = mapped_column(Text, info=public_text(PROFILE))
    signer_name: Mapped[str] = mapped_column(String(64), nullable=False, info=public_text(PROFILE))
    signed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)

    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    review_reason: Mapped[str | None] = mapped_column(Text, info=public_text(COMMENT))
    valid_from: Mapped[datetime | None] = mapped_column(DateTime)
    valid_until: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    revoke_reason: Mapped[str | None] = mapped_column(Text, info=public_text(COMMENT))

    merchant: Mapped[Merchant] = relationship(lazy="selectin")
    market: Mapped[Market] = relationship(lazy="selectin")

    __table_args__ = (
        # One pledge under review per entity: the database decides a race of two submissions,
        # not a read-then-write in Python. (Approved ones may be two: the one in force and its
        # renewal, which begins when it ends; their review is a compare-and-set on "pending".)
        Index("uq_pledges_one_pending_per_merchant", "merchant_id", unique=True,
              sqlite_where=text("status = 'pending'"), postgresql_where=text("status = 'pending'")),
        Index("ix_pledges_market_status", "market_id", "status"),
    )

    def status_at(self, now: datetime | None = None) -> str:
        now = now or utcnow()
        if self.status == "approved" and self.valid_until is not None and self.valid_until <= now:
            return "expired"
        if self.status == "approved" and self.valid_from is not None and self.valid_from > now:
            return "upcoming"
        return self.status

    def snapshot(self, now: datetime | None = None) -> dict[str, Any]:
        """What the audit log keeps as before/after of a transition."""
        return {"status": self.status_at(now),
                "valid_from": self.valid_from.isoformat() if self.valid_from else None,
                "valid_until": self.valid_until.isoformat() if self.valid_until else None}


def in_force_clause(now: datetime):
    """SQL condition: the pledge is approved and `now` lies in its term."""
    return and_(Pledge.status == "approved", Pledge.valid_from <= now, Pledge.valid_until > now)


def expired_clause(now: datetime):
    return or_(Pledge.status == "expired", and_(Pledge.status == "approved", Pledge.valid_until <= now))


def status_clause(status: str, now: datetime):
    """SQL condition for the status a client sees (see Pledge.status_at)."""
    if status == "approved":
        return in_force_clause(now)
    if status == "expired":
        return expired_clause(now)
    if status == "upcoming":
        return and_(Pledge.status == "approved", Pledge.valid_from > now)
    return Pledge.status == status
