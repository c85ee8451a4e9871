"""Activities (主题党日、三会一课、志愿服务…), registration, leave, check-in, points, care stations."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint, event)
from sqlalchemy.orm import Mapped, mapped_column

from app.core import generations
from app.core.content import COMMENT, PROFILE, public_text
from app.core.db import TimestampMixin
from app.core.time import utcnow
from app.extensions import db

__all__ = [
    "Activity", "Registration", "LeaveRequest", "CheckIn", "CheckInRefusal", "PointsEntry",
    "CareStation", "ACTIVITY_TYPES", "AUDIENCES", "AMENITIES",
]

ACTIVITY_TYPES = ("主题党日", "支部党员大会", "支委会", "党小组会", "党课", "志愿服务", "培训", "关爱活动")
# members: the organisation's verified party members; station_riders: every rider who joined
# the organisation's station (open rider activities), members included.
AUDIENCES = {"members": "本组织党员", "station_riders": "本站点全体骑手"}
AMENITIES = {"water": "饮水", "charging": "充电", "microwave": "微波炉", "rest": "休息",
             "toilet": "卫生间", "first_aid": "急救药箱"}


class Activity(TimestampMixin, db.Model):
    __tablename__ = "activities"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("party_orgs.id"), nullable=False)
    type: Mapped[str] = mapped_column(String(16), nullable=False)
    title: Mapped[str] = mapped_column(String(100), nullable=False, info=public_text(PROFILE))
    description: Mapped[str | None] = mapped_column(Text, info=public_text(PROFILE))
    starts_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    ends_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    checkin_opens_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    checkin_closes_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    place_name: Mapped[str | None] = mapped_column(String(200), info=public_text(PROFILE))
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    radius_m: Mapped[int | None] = mapped_column(Integer)
    capacity: Mapped[int | None] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    audience: Mapped[str] = mapped_column(String(16), nullable=False, default="members")
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="scheduled")
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime)
    cancel_reason: Mapped[str | None] = mapped_column(Text, info=public_text(COMMENT))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    __table_args__ = (
        Index("ix_activities_org_starts", "org_id", "starts_at"),
        Index("ix_activities_starts_at", "starts_at"),
    )

    @property
    def has_geofence(self) -> bool:
        return self.lat is not None and self.lng is not None and bool(self.radius_m)

    @property
    def cancelled(self) -> bool:
        return self.status == "cancelled"


class Registration(db.Model):
    __tablename__ = "activity_registrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id"), nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)

    __table_args__ = (UniqueConstraint("activity_id", "user_id", name="uq_activity_registrations_activity_user"),)


class LeaveRequest(TimestampMixin, db.Model):
    """请假: a member who cannot attend asks the organiser; approved leave is not absence."""

    __tablename__ = "activity_leave_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id"), nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    reason: Mapped[str] = mapped_column(Text, nullable=False, info=public_text(COMMENT))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime)
    review_reason: Mapped[str | None] = mapped_column(Text, info=public_text(COMMENT))

    __table_args__ = (UniqueConstraint("activity_id", "user_id", name="uq_activity_leave_requests_activity_user"),)


class CheckIn(db.Model):
    """Exactly one per user and activity: the unique constraint decides every race.

    Raw coordinates (lat, lng, accuracy_m) are purged after 30 days; distance_m and the
    verdict stay."""

    __tablename__ = "activity_checkins"

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id"), nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    checked_in_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)
    method: Mapped[str] = mapped_column(String(16), nullable=False)  # rotating_qr / manual
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # on_time / late
    slot: Mapped[int | None] = mapped_column(Integer)
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    distance_m: Mapped[float | None] = mapped_column(Float)
    # inside / poor_accuracy / no_geofence / manual
    location_verdict: Mapped[str] = mapped_column(String(16), nullable=False)
    flagged: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    manual_reason: Mapped[str | None] = mapped_column(Text, info=public_text(COMMENT))

    __table_args__ = (UniqueConstraint("activity_id", "user_id", name="uq_activity_checkins_activity_user"),)


class CheckInRefusal(db.Model):
    """Refused scans, kept for the organiser (who tried, why, how often, when last): one row per
    (activity, user, reason) with a count, so a flood of junk scans cannot grow the table."""

    __tablename__ = "activity_checkin_refusals"

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id"), nullable=False, index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)  # the latest
    code: Mapped[str] = mapped_column(String(40), nullable=False)
    count: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    distance_m: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (UniqueConstraint("activity_id", "user_id", "code",
                                       name="uq_activity_checkin_refusals_activity_user_code"),)


class PointsEntry(db.Model):
    """积分 ledger, append-only: a correction is a new entry, never an edit.

    Automatic awards are unique per (user, reason, activity); manual adjustments have no
    activity (NULLs never collide in a unique constraint) and carry a note and an actor."""

    __tablename__ = "points_ledger"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("party_orgs.id"))
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("activities.id"))
    reason: Mapped[str] = mapped_column(String(16), nullable=False)  # checkin / manual
    delta: Mapped[int] = mapped_column(Integer, nullable=False)
    note: Mapped[str | None] = mapped_column(Text, info=public_text(COMMENT))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)

    __table_args__ = (
        UniqueConstraint("user_id", "reason", "activity_id", name="uq_points_ledger_user_reason_activity"),
        Index("ix_points_ledger_org_created", "org_id", "created_at"),
    )


# "我的积分" answers repeat reads from memory until one of the user's entries is written.
generations.track(PointsEntry, topic="points", by="user_id")


@event.listens_for(PointsEntry, "before_update")
def _refuse_update(mapper, connection, target) -> None:
    raise RuntimeError("points_ledger is append-only")


@event.listens_for(PointsEntry, "before_delete")
def _refuse_delete(mapper, connection, target) -> None:
    raise RuntimeError("points_ledger is append-only")


class CareStation(TimestampMixin, db.Model):
    """暖心驿站/小哥驿站: where riders can rest, drink water, charge, heat a meal."""

    __tablename__ = "care_stations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False, info=public_text(PROFILE))
    address: Mapped[str | None] = mapped_column(String(200), info=public_text(PROFILE))
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"), nullable=False, index=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("party_orgs.id"))
    lat: Mapped[float] = mapped_column(Float, nullable=False)
    lng: Mapped[float] = mapped_column(Float, nullable=False)
    hours: Mapped[str | None] = mapped_column(String(64), info=public_text(PROFILE))
    amenities: Mapped[list[Any]] = mapped_column(JSON, nullable=False, default=list)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)  # 暂停开放：不再出现在附近驿站中
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    __table_args__ = (Index("ix_care_stations_lat_lng", "lat", "lng"),)
