"""Rider reports (骑手随手拍): categories kept as data, the reports, their handling history and the
one points award a report can earn."""
from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.content import COMMENT, PROFILE, public_text
from app.core.time import utcnow
from app.extensions import db

__all__ = [
    "ReportCategory", "ReportCategoryPoints", "Report", "ReportEvent", "ReportAward",
    "DEFAULT_CATEGORIES", "REPORT_STATUSES", "OPEN_STATUSES", "CELL_DEGREES",
]

# (code, label, points, order): what the migration seeds; regulators and admins change the points.
DEFAULT_CATEGORIES = (
    ("kitchen_hygiene", "后厨卫生", 10, 1), ("expired_food", "过期变质食品", 10, 2),
    ("unlicensed", "无证经营", 8, 3), ("price_fraud", "价格欺诈", 5, 4),
    ("short_weight", "缺斤短两", 5, 5), ("other", "其他", 2, 6),
)
# open 待受理 → accepted 已受理 → upheld 属实 (→ rectified 已整改) | unfounded 不属实
REPORT_STATUSES = {"open": "待受理", "accepted": "已受理", "upheld": "属实", "unfounded": "不属实",
                   "rectified": "已整改"}
OPEN_STATUSES = ("open", "accepted")
CELL_DEGREES = 0.01  # the heat map's cell (about 1.1 km × 1 km in southern China)


def cell_of(value: float) -> int:
    """Index of the 0.01° cell a coordinate falls in (floor, so cells never straddle zero)."""
    return math.floor(value / CELL_DEGREES)


def cell_centre(index: int) -> float:
    return round((index + 0.5) * CELL_DEGREES, 6)


class ReportCategory(db.Model):
    """A kind of problem a rider reports (后厨卫生 …), with the points an upheld one earns
    everywhere that has not set its own (ReportCategoryPoints)."""

    __tablename__ = "report_categories"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(32), nullable=False, info=public_text(PROFILE))
    points: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    sort_order: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class ReportCategoryPoints(db.Model):
    """A region's own amount for a category (set by its regulators); the most specific region
    covering a report's region decides."""

    __tablename__ = "report_category_points"

    category_code: Mapped[str] = mapped_column(ForeignKey("report_categories.code"), primary_key=True)
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"), primary_key=True)
    points: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Report(db.Model):
    """One 随手拍 report. Routed on filing: a stall's report to its market (`market_id`, handled by
    the market's managers; the market's regulators see it too), any other to `region_code`'s
    regulators. `lat`/`lng` are GCJ-02 and exact while the report is open, for the handler only;
    closing it moves them to the centre of their 0.01° cell (`cell_lat`/`cell_lng`)."""

    __tablename__ = "rider_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    category_code: Mapped[str] = mapped_column(ForeignKey("report_categories.code"), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, info=public_text(COMMENT))
    photo_keys: Mapped[list[Any]] = mapped_column(JSON, nullable=False, default=list)
    stall_id: Mapped[int | None] = mapped_column(ForeignKey("stalls.id"))
    market_id: Mapped[int | None] = mapped_column(ForeignKey("markets.id"), index=True)
    shop_name: Mapped[str | None] = mapped_column(String(100), info=public_text(PROFILE))
    shop_address: Mapped[str | None] = mapped_column(String(200), info=public_text(PROFILE))
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"), nullable=False)
    lat: Mapped[float] = mapped_column(Float, nullable=False)
    lng: Mapped[float] = mapped_column(Float, nullable=False)
    cell_lat: Mapped[int] = mapped_column(Integer, nullable=False)
    cell_lng: Mapped[int] = mapped_column(Integer, nullable=False)
    location_purged: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    created_month: Mapped[str] = mapped_column(String(7), nullable=False)  # Asia/Shanghai, 2026-03
    accept_due_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    close_due_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime)
    accepted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision_note: Mapped[str | None] = mapped_column(Text, info=public_text(COMMENT))
    close_seconds: Mapped[int | None] = mapped_column(Integer)  # filed → decided, for the figures
    rectified_at: Mapped[datetime | None] = mapped_column(DateTime)
    rectified_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    rectification_note: Mapped[str | None] = mapped_column(Text, info=public_text(COMMENT))
    rectification_photo_key: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        Index("ix_rider_reports_stall_status", "stall_id", "status"),
        Index("ix_rider_reports_region_status", "region_code", "status", "created_at"),
        Index("ix_rider_reports_status_due", "status", "close_due_at"),
    )

    def overdue(self, now: datetime) -> bool:
        """Not accepted within its working day, or not closed within its seven days."""
        if self.status == "open" and now >= self.accept_due_at:
            return True
        return self.status in OPEN_STATUSES and now >= self.close_due_at


class ReportEvent(db.Model):
    """The handling history of a report, as the reporter and the handlers read it."""

    __tablename__ = "rider_report_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("rider_reports.id"), nullable=False, index=True)
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    region_code: Mapped[str | None] = mapped_column(String(6))  # where a transfer sent it


class ReportAward(db.Model):
    """The one points award of an upheld report (its primary key is the report: a second award
    cannot exist). `day` is the local day the report was filed, which the daily cap counts by;
    `points` may be below the category's amount, or 0, when the cap was reached."""

    __tablename__ = "rider_report_awards"

    report_id: Mapped[int] = mapped_column(ForeignKey("rider_reports.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    day: Mapped[date] = mapped_column(Date, nullable=False)
    points: Mapped[int] = mapped_column(Integer, nullable=False)
    capped: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)

    __table_args__ = (Index("ix_rider_report_awards_user_day", "user_id", "day"),)
