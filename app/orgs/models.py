"""Party organisations (党组织), their members (党员) and the riders of a station (站点骑手)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.content import COMMENT, PROFILE, public_text
from app.core.db import TimestampMixin
from app.core.time import utcnow
from app.extensions import db

__all__ = [
    "PartyOrg", "Membership", "StationRider", "StationJoinRequest",
    "ORG_KINDS", "ORG_SECTORS", "MEMBER_STANDINGS", "MEMBERSHIP_STATUSES",
]

# kind -> label: 党委, 党总支, 党支部, 联合党支部
ORG_KINDS = {"committee": "党委", "general_branch": "党总支", "branch": "党支部", "joint_branch": "联合党支部"}
ORG_SECTORS = {"market": "专业市场", "rider": "快递外卖骑手", "enterprise": "小微企业"}
MEMBER_STANDINGS = {"formal": "正式党员", "probationary": "预备党员"}
MEMBERSHIP_STATUSES = ("pending", "verified", "rejected")


class PartyOrg(TimestampMixin, db.Model):
    __tablename__ = "party_orgs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False, info=public_text(PROFILE))
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    sector: Mapped[str] = mapped_column(String(16), nullable=False)
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"), nullable=False, index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("party_orgs.id"), index=True)
    market_id: Mapped[int | None] = mapped_column(ForeignKey("markets.id"), index=True)
    # Rider branches belong to a delivery station of a platform (e.g. 万秀区美团站, 美团).
    station: Mapped[str | None] = mapped_column(String(100), info=public_text(PROFILE))
    platform: Mapped[str | None] = mapped_column(String(32), info=public_text(PROFILE))
    # A rider station's join code, shared by its secretary: a rider who has it joins at once;
    # one who has not asks, and the secretary confirms. None: joining only by confirmation.
    join_code: Mapped[str | None] = mapped_column(String(16))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Membership(TimestampMixin, db.Model):
    """A user's claim to be a party member of an organisation, verified by its secretary.

    流动党员 (floating members) keep their 组织关系 at home: `home_org_name` records where."""

    __tablename__ = "party_memberships"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("party_orgs.id"), nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    standing: Mapped[str] = mapped_column(String(16), nullable=False)
    floating: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    home_org_name: Mapped[str | None] = mapped_column(String(100), info=public_text(PROFILE))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime)
    review_reason: Mapped[str | None] = mapped_column(Text, info=public_text(COMMENT))

    __table_args__ = (
        UniqueConstraint("org_id", "user_id", name="uq_party_memberships_org_user"),
        Index("ix_party_memberships_org_status", "org_id", "status"),
    )

    @property
    def verified(self) -> bool:
        return self.status == "verified"


class StationRider(db.Model):
    """A rider who joined a rider organisation's station audience (open rider activities)."""

    __tablename__ = "station_riders"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("party_orgs.id"), nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    joined_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)

    __table_args__ = (UniqueConstraint("org_id", "user_id", name="uq_station_riders_org_user"),)


class StationJoinRequest(TimestampMixin, db.Model):
    """A rider asking to join a station without its join code; the station branch decides."""

    __tablename__ = "station_join_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("party_orgs.id"), nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime)
    review_reason: Mapped[str | None] = mapped_column(Text, info=public_text(COMMENT))

    __table_args__ = (
        UniqueConstraint("org_id", "user_id", name="uq_station_join_requests_org_user"),
        Index("ix_station_join_requests_org_status", "org_id", "status"),
    )
