"""Reads of rider reports: the reporter's and the handler's views, the handlers' queue, and the
figures (counts by category, region, month and status, time to close, the heat map's cells),
all aggregated in SQL."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, false, func, or_, select, true

from app.core.errors import APIError
from app.core.pagination import paginate
from app.core.regions import Region, codes_under
from app.core.time import utcnow
from app.extensions import db
from app.identity.auth import Target, authorize, has_role, scopes_of
from app.reports.models import (CELL_DEGREES, OPEN_STATUSES, REPORT_STATUSES, Report, ReportAward, ReportCategory,
                                ReportEvent, cell_centre)

NATIONAL = "000000"
HEATMAP_MIN_COUNT = 3  # a cell with fewer reports is left out: it could point at one rider's round


# -- views ----------------------------------------------------------------------------------------
def _labels() -> dict[str, str]:
    return dict(db.session.execute(select(ReportCategory.code, ReportCategory.label)).all())


def _place(report: Report, handler: bool) -> dict[str, Any]:
    if report.stall_id is None:
        return {"kind": "shop", "shop_name": report.shop_name, "shop_address": report.shop_address,
                "market_name": None, "stall_number": None, "stall_token": None}
    from app.markets.models import Stall

    stall = db.session.get(Stall, report.stall_id)
    return {"kind": "stall", "shop_name": None, "shop_address": None, "market_name": stall.market.name,
            "stall_number": stall.number, "stall_token": stall.token if handler else None}


def _photo_url(report_id: int, key: str) -> str:
    return f"/api/v1/reports/{report_id}/photos/{key}.jpg"


def reporter_card(user_id: int) -> dict[str, Any]:
    """What a handler sees of the rider: a masked name and a masked phone, never who exactly."""
    from app.identity.models import User
    from app.identity.services import mask_name, mask_phone

    user = db.session.get(User, user_id)
    return {"name": mask_name(user.real_name or user.nickname), "phone": mask_phone(user.phone)}


def report_view(report: Report, handler: bool, now: datetime | None = None,
                labels: dict[str, str] | None = None, with_history: bool = False,
                awards: dict[int, int] | None = None) -> dict[str, Any]:
    """One report as its reporter reads it (what happened to it, never who handled it nor the
    position they stood at) or as a handler reads it (plus the reporter's masked card and the
    location: exact while open, the cell's centre once closed)."""
    now = now or utcnow()
    labels = labels if labels is not None else _labels()
    view = {
        "id": report.id, "category": report.category_code, "category_label": labels.get(report.category_code),
        "description": report.description, "status": report.status, "status_label": REPORT_STATUSES[report.status],
        "place": _place(report, handler), "region_code": report.region_code,
        "photo_urls": [_photo_url(report.id, key) for key in report.photo_keys or []],
        "created_at": report.created_at, "accept_due_at": report.accept_due_at, "close_due_at": report.close_due_at,
        "overdue": report.overdue(now), "accepted_at": report.accepted_at, "decided_at": report.decided_at,
        "decision_note": report.decision_note, "rectified_at": report.rectified_at,
        "rectification_note": report.rectification_note,
        "rectification_photo_url": (_photo_url(report.id, report.rectification_photo_key)
                                    if report.rectification_photo_key else None),
    }
    if handler:
        view.update({"reporter": reporter_card(report.reporter_id), "market_id": report.market_id,
                     "location": {"lat": report.lat, "lng": report.lng,
                                  "precision": "cell" if report.location_purged else "exact"}})
    else:
        if awards is None:
            award = db.session.get(ReportAward, report.id)
            awards = {report.id: award.points} if award else {}
        view["points_awarded"] = awards.get(report.id)
    if with_history:
        view["history"] = [{"action": event.action, "at": event.at, "region_code": event.region_code}
                           for event in db.session.scalars(select(ReportEvent).where(ReportEvent.report_id == report.id)
                                                           .order_by(ReportEvent.at, ReportEvent.id))]
    return view


def view_report(actor, report_id: int) -> dict[str, Any]:
    """For a handler in scope the handler's view; for the reporter theirs; anyone else 404."""
    from app.reports.services import get_report, handle

    report = get_report(report_id)
    if report.reporter_id == actor.id and not has_role(actor, "market_manager", "regulator"):
        return report_view(report, handler=False, with_history=True)
    try:
        handle(actor, report_id)
    except APIError:
        if report.reporter_id == actor.id:
            return report_view(report, handler=False, with_history=True)
        raise
    return report_view(report, handler=True, with_history=True)


# -- lists ----------------------------------------------------------------------------------------
def handler_scope(actor):
    """SQL condition: the reports `actor` handles or oversees (admin: all; a regulator: those
    in their regions; a manager: those routed to their markets)."""
    conditions = []
    for grant in actor.grants:
        if grant.role == "admin":
            return true()
        if grant.role == "regulator" and grant.scope_type == "region":
            conditions.append(codes_under(Report.region_code, grant.scope_id))
        elif grant.role == "market_manager" and grant.scope_type == "market" and grant.scope_id.isdigit():
            conditions.append(Report.market_id == int(grant.scope_id))
    return or_(*conditions) if conditions else false()


def list_reports(actor, status: str | None, mine: bool, page: int, per_page: int) -> dict:
    """A rider's own reports (newest first), or a handler's queue: the reports in their scope,
    oldest first, by default those still open or accepted."""
    now = utcnow()
    handler = not mine and has_role(actor, "market_manager", "regulator")
    if handler:
        stmt = select(Report).where(handler_scope(actor)).order_by(Report.created_at, Report.id)
        stmt = stmt.where(Report.status == status) if status else stmt.where(Report.status.in_(OPEN_STATUSES))
    else:
        stmt = select(Report).where(Report.reporter_id == actor.id).order_by(Report.created_at.desc(), Report.id.desc())
        if status:
            stmt = stmt.where(Report.status == status)
    result = paginate(stmt, page, per_page)
    awards = _preload(result["items"], handler)
    labels = _labels()
    result["items"] = [report_view(report, handler, now, labels, awards=awards) for report in result["items"]]
    return result


def _preload(reports: list[Report], handler: bool) -> dict[int, int] | None:
    """What the page's views read, one query each (the views then hit the identity map); for a
    rider's page, the points each report earned."""
    from app.identity import people
    from app.markets.models import Stall

    stall_ids = {report.stall_id for report in reports if report.stall_id is not None}
    if stall_ids:
        list(db.session.scalars(select(Stall).where(Stall.id.in_(stall_ids))))
    if handler:
        people.preload(report.reporter_id for report in reports)
        return None
    ids = [report.id for report in reports]
    return dict(db.session.execute(select(ReportAward.report_id, ReportAward.points)
                                   .where(ReportAward.report_id.in_(ids))).all()) if ids else {}


# -- figures --------------------------------------------------------------------------------------
def resolve_region(actor, region_code: str | None) -> dict[str, Any]:
    """The region a regulator asks figures for: the given one (in their scope), else their own
    single region; the country for an administrator."""
    if region_code is None:
        grants = scopes_of(actor, "regulator")
        if any(grant.role == "admin" for grant in grants):
            region_code = NATIONAL
        else:
            regions = sorted({grant.scope_id for grant in grants if grant.scope_type == "region"})
            if len(regions) != 1:
                raise APIError(code="REPORT_REGION_REQUIRED", details={"regions": regions})
            region_code = regions[0]
    if region_code == NATIONAL:
        authorize(actor, ["regulator"], Target(region_code=None))
        return {"code": NATIONAL, "name": "全国"}
    region = db.session.get(Region, region_code)
    if region is None:
        raise APIError(code="REGION_NOT_FOUND", details={"region_code": region_code})
    authorize(actor, ["regulator"], Target(region_code=region.code))
    return {"code": region.code, "name": region.name}


def _in_region(region_code: str | None):
    if not region_code or region_code == NATIONAL:
        return true()
    return codes_under(Report.region_code, region_code)


def _median(where) -> float | None:
    """Median of close_seconds over `where`, read as the one or two middle rows of an ordered,
    indexed scan (portable: SQLite has no percentile function)."""
    closed = and_(where, Report.close_seconds.is_not(None))
    count = db.session.scalar(select(func.count()).select_from(Report).where(closed)) or 0
    if not count:
        return None
    middle = list(db.session.scalars(select(Report.close_seconds).where(closed).order_by(Report.close_seconds)
                                     .offset((count - 1) // 2).limit(2 - count % 2)))
    return sum(middle) / len(middle)


def _hours(seconds: float | None) -> float | None:
    return round(seconds / 3600, 1) if seconds is not None else None


def report_figures(region_code: str | None, now: datetime | None = None) -> dict[str, Any]:
    """Reports of a region (its code as a prefix; None or 000000: the country): totals by status,
    category, region and month (Asia/Shanghai), how many are overdue now, and the average and
    median hours from filing to the 属实/不属实 decision. For /stats/overview to embed."""
    now = now or utcnow()
    where = _in_region(region_code)

    def grouped(column) -> list[tuple]:
        return db.session.execute(select(column, func.count()).where(where).group_by(column).order_by(column)).all()

    by_status = {status: 0 for status in REPORT_STATUSES}
    by_status.update({status: int(n) for status, n in grouped(Report.status)})
    labels = _labels()
    overdue = db.session.scalar(select(func.count()).select_from(Report).where(where, or_(
        and_(Report.status == "open", Report.accept_due_at <= now),
        and_(Report.status.in_(OPEN_STATUSES), Report.close_due_at <= now)))) or 0
    average = db.session.scalar(select(func.avg(Report.close_seconds)).where(where))
    closed = by_status["upheld"] + by_status["unfounded"] + by_status["rectified"]
    return {
        "total": sum(by_status.values()), "by_status": by_status,
        "by_category": [{"code": code, "label": labels.get(code, code), "count": int(n)}
                        for code, n in grouped(Report.category_code)],
        "by_region": [{"code": code, "count": int(n)} for code, n in grouped(Report.region_code)],
        "by_month": [{"month": month, "count": int(n)} for month, n in grouped(Report.created_month)],
        "overdue": int(overdue), "closed": closed,
        "upheld_rate": round((by_status["upheld"] + by_status["rectified"]) / closed, 4) if closed else None,
        "close_hours_avg": _hours(float(average) if average is not None else None),
        "close_hours_median": _hours(_median(where)),
    }


def heatmap(region_code: str | None) -> dict[str, Any]:
    """Reports counted per 0.01° cell (GCJ-02), never single points: cells with fewer than
    HEATMAP_MIN_COUNT reports are left out, and their reports counted as `suppressed`."""
    where = _in_region(region_code)
    rows = db.session.execute(select(Report.cell_lat, Report.cell_lng, func.count()).where(where)
                              .group_by(Report.cell_lat, Report.cell_lng)
                              .order_by(Report.cell_lat, Report.cell_lng)).all()
    cells = [{"lat": cell_centre(lat), "lng": cell_centre(lng), "count": int(n)}
             for lat, lng, n in rows if n >= HEATMAP_MIN_COUNT]
    suppressed = sum(int(n) for _, _, n in rows if n < HEATMAP_MIN_COUNT)
    return {"cell_degrees": CELL_DEGREES, "min_count": HEATMAP_MIN_COUNT, "cells": cells, "suppressed": suppressed}
