"""What changes rider reports: categories and their points, filing (photos through the shared
upload pipeline), and the handling loop (accept, decide, rectified, transfer), each step audited,
told to the reporter in the same transaction, and shown on a stall's badge when it changes it.

Routing: a report on a stall (scanned sticker) goes to that market's managers; the market's
regulators see it and may act too. Any other report goes to the regulators of the rider's
station region (the region of the rider station they joined last; else of their verified party
organisation): app/core keeps no coordinates of counties to look a point up in, and a report
sent to the wrong county is transferred by its regulators (POST /reports/{id}/transfer).

Services flush, never commit (the request commits)."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select

from app.badge import cache as badge_cache
from app.core import audit, ratelimit, storage
from app.core.db import get_or_404, insert_ignore, is_postgres
from app.core.errors import APIError, Forbidden, NotFound
from app.core.regions import Region, code_prefix, region_covers
from app.core.review import compare_and_set, decision_reason
from app.core.time import local_today, to_local, to_naive_utc, utcnow
from app.extensions import db
from app.identity.auth import Target, authorize, has_role
from app.reminders import notices
from app.reminders.outbox import Reminder, enqueue
from app.reports import errors as _errors  # noqa: F401  registers this feature's codes
from app.reports.models import (OPEN_STATUSES, Report, ReportAward, ReportCategory, ReportCategoryPoints,
                                ReportEvent, cell_centre, cell_of)

HANDLER_ROLES = ("market_manager", "regulator")
MAX_PHOTOS = 3
REPORTS_PER_HOUR = 10  # a rider on a round reports a few things, not dozens
CLOSE_WITHIN = timedelta(days=7)
ACCEPT_WITHIN_WORKING_DAYS = 1
# China's extreme points (曾母暗沙 3.86°N … 漠河 53.56°N, 帕米尔 73.66°E … 乌苏里江 135.05°E): a fix
# outside is a phone without location, a spoofed one, or a report from abroad.
CHINA_BOUNDS = {"lat": (3.86, 53.56), "lng": (73.66, 135.05)}
DEFAULT_DAILY_POINTS_CAP = 20


# -- categories -----------------------------------------------------------------------------------
def install_default_categories() -> int:
    """The six categories the migration seeds, for databases built without it (tests, create_all)."""
    from app.reports.models import DEFAULT_CATEGORIES

    return insert_ignore(ReportCategory, [
        {"code": code, "label": label, "points": points, "sort_order": order, "active": True,
         "updated_at": utcnow()} for code, label, points, order in DEFAULT_CATEGORIES], ["code"])


def region_points(region_code: str | None) -> dict[str, int]:
    """The points each category earns in `region_code`: the most specific regional amount set
    for a region covering it, else the category's own."""
    amounts = dict(db.session.execute(select(ReportCategory.code, ReportCategory.points)).all())
    if not region_code:
        return amounts
    chosen: dict[str, tuple[int, int]] = {}
    for code, region, points in db.session.execute(select(
            ReportCategoryPoints.category_code, ReportCategoryPoints.region_code, ReportCategoryPoints.points)):
        if region_covers(region, region_code):
            depth = len(code_prefix(region))
            if depth > chosen.get(code, (-1, 0))[0]:
                chosen[code] = (depth, points)
    amounts.update({code: points for code, (_, points) in chosen.items()})
    return amounts


def list_categories(region_code: str | None = None, include_inactive: bool = False) -> list[dict]:
    stmt = select(ReportCategory).order_by(ReportCategory.sort_order, ReportCategory.code)
    if not include_inactive:
        stmt = stmt.where(ReportCategory.active.is_(True))
    points = region_points(region_code)
    return [{"code": c.code, "label": c.label, "points": points.get(c.code, c.points), "active": c.active}
            for c in db.session.scalars(stmt)]


def update_category(actor, code: str, changes: dict) -> dict:
    """With `region`: that region's own points for the category (a regulator of the region, or
    an admin). Without: the category itself (label, points everywhere no region set its own,
    active) — admins only, since it applies to every region. Audited."""
    category = db.session.get(ReportCategory, code)
    if category is None:
        raise NotFound(code="REPORT_CATEGORY_UNKNOWN")
    region_code = changes.pop("region", None)
    if region_code is not None:
        return _set_region_points(actor, category, region_code, changes)
    if not has_role(actor, "admin"):
        raise APIError(code="REPORT_CATEGORY_POINTS_REGION")
    before = {key: getattr(category, key) for key in changes}
    for key, value in changes.items():
        setattr(category, key, value)
    category.updated_at, category.updated_by_id = utcnow(), actor.id
    db.session.flush()
    audit.record("report_category.update", "report_category", code, actor=actor, actor_role="admin",
                 before=before, after=dict(changes))
    return {"code": category.code, "label": category.label, "points": category.points, "active": category.active,
            "region": None}


def _set_region_points(actor, category: ReportCategory, region_code: str, changes: dict) -> dict:
    if set(changes) - {"points"} or "points" not in changes:
        raise APIError(code="REPORT_CATEGORY_POINTS_REGION", message="按地区只能设置积分（points）")
    region = db.session.get(Region, region_code)
    if region is None:
        raise APIError(code="REGION_NOT_FOUND", details={"region_code": region_code})
    role = authorize(actor, ["regulator"], Target(region_code=region.code))
    row = db.session.get(ReportCategoryPoints, (category.code, region.code))
    before = {"points": row.points if row else None}
    if row is None:
        row = ReportCategoryPoints(category_code=category.code, region_code=region.code, points=changes["points"])
        db.session.add(row)
    row.points, row.updated_at, row.updated_by_id = changes["points"], utcnow(), actor.id
    db.session.flush()
    audit.record("report_category.region_points", "report_category", category.code, actor=actor, actor_role=role,
                 before=before, after={"points": row.points, "region_code": region.code}, region_code=region.code)
    return {"code": category.code, "label": category.label, "points": row.points, "active": category.active,
            "region": region.code}


# -- filing ---------------------------------------------------------------------------------------
def add_working_days(moment: datetime, days: int) -> datetime:
    """`moment` plus `days` working days (Monday to Friday, Asia/Shanghai), same time of day.
    Public holidays and their swapped working weekends are not modelled."""
    local = to_local(moment)
    while days > 0:
        local += timedelta(days=1)
        if local.weekday() < 5:
            days -= 1
    return to_naive_utc(local)


def check_location(lat: float, lng: float) -> None:
    (lat_min, lat_max), (lng_min, lng_max) = CHINA_BOUNDS["lat"], CHINA_BOUNDS["lng"]
    if not (lat_min <= lat <= lat_max and lng_min <= lng <= lng_max):
        raise APIError(code="REPORT_LOCATION_OUTSIDE_CHINA",
                       details={"fields": {"lat": [f"应在 {lat_min}–{lat_max} 之间"],
                                           "lng": [f"应在 {lng_min}–{lng_max} 之间"]}})


def _active_category(code: str) -> ReportCategory:
    category = db.session.get(ReportCategory, code)
    if category is None or not category.active:
        known = list(db.session.scalars(select(ReportCategory.code).where(ReportCategory.active.is_(True))
                                        .order_by(ReportCategory.sort_order)))
        raise APIError(code="REPORT_CATEGORY_NOT_FOUND", details={"category": code, "known": known})
    return category


def rider_region(user_id: int) -> str | None:
    """The region of the rider's station (the one joined last), else of a verified party
    organisation of theirs."""
    from app.orgs.models import Membership, PartyOrg, StationRider

    region = db.session.scalar(
        select(PartyOrg.region_code).join(StationRider, StationRider.org_id == PartyOrg.id)
        .where(StationRider.user_id == user_id).order_by(StationRider.joined_at.desc(), StationRider.id.desc()).limit(1))
    if region is None:
        region = db.session.scalar(
            select(PartyOrg.region_code).join(Membership, Membership.org_id == PartyOrg.id)
            .where(Membership.user_id == user_id, Membership.status == "verified").order_by(Membership.id.desc()).limit(1))
    return region


def _place(actor, data: dict) -> dict:
    """Where the report points: a stall (its market routes it) or a shop in the rider's region."""
    from app.markets.services import stall_by_token

    token = (data.get("stall_token") or "").strip()
    if token:
        try:
            stall = stall_by_token(token)
        except APIError as exc:
            code = "REPORT_STALL_TOKEN_VOID" if exc.code == "STALL_TOKEN_VOID" else "REPORT_STALL_UNKNOWN"
            raise APIError(code=code, details={"field": "stall_token"})
        return {"stall_id": stall.id, "market_id": stall.market_id, "region_code": stall.market.region_code,
                "shop_name": None, "shop_address": None}
    name = (data.get("shop_name") or "").strip()
    if not name:
        raise APIError(code="REPORT_PLACE_REQUIRED", details={"fields": ["stall_token", "shop_name"]})
    region = rider_region(actor.id)
    if region is None:
        raise APIError(code="REPORT_REGION_UNKNOWN")
    return {"stall_id": None, "market_id": None, "region_code": region, "shop_name": name,
            "shop_address": (data.get("shop_address") or "").strip() or None}


def file_report(actor, data: dict, photos: list[bytes]) -> Report:
    """A rider's report. Cheap checks first (category, location, place), then the photos, each
    checked and re-encoded without metadata (GPS included) by app.core.storage; objects stored
    for a request that then fails are removed with its rollback, so nothing is half-saved."""
    category = _active_category(data["category"])
    check_location(data["lat"], data["lng"])
    place = _place(actor, data)
    photos = [photo for photo in photos if photo]
    if not 1 <= len(photos) <= MAX_PHOTOS:
        raise APIError(code="REPORT_PHOTOS_REQUIRED", details={"field": "photos", "min": 1, "max": MAX_PHOTOS})
    ratelimit.enforce("report", str(actor.id), REPORTS_PER_HOUR, 3600, code="REPORT_RATE_LIMITED")
    keys = [storage.store_photo(photo) for photo in photos]
    now = utcnow()
    report = Report(
        reporter_id=actor.id, category_code=category.code, description=data["description"].strip(),
        photo_keys=keys, lat=data["lat"], lng=data["lng"], cell_lat=cell_of(data["lat"]),
        cell_lng=cell_of(data["lng"]), status="open", created_at=now, created_month=f"{to_local(now):%Y-%m}",
        accept_due_at=add_working_days(now, ACCEPT_WITHIN_WORKING_DAYS), close_due_at=now + CLOSE_WITHIN, **place)
    db.session.add(report)
    db.session.flush()
    _event(report, "submitted", actor, now)
    audit.record("report.submit", "report", report.id, actor=actor, actor_role="rider",
                 after={"category": category.code, "stall_id": report.stall_id, "market_id": report.market_id,
                        "region_code": report.region_code}, region_code=report.region_code)
    _tell_handlers(report, category.label, now)
    return report


def _event(report: Report, action: str, actor, at: datetime, region_code: str | None = None) -> None:
    db.session.add(ReportEvent(report_id=report.id, action=action, at=at, actor_id=getattr(actor, "id", None),
                               region_code=region_code))
    db.session.flush()


# -- who handles a report -------------------------------------------------------------------------
def report_target(report: Report) -> Target:
    return Target(region_code=report.region_code, market_id=report.market_id)


def get_report(report_id: int) -> Report:
    return get_or_404(Report, report_id, "REPORT_NOT_FOUND")


def handle(actor, report_id: int, roles=HANDLER_ROLES, for_update: bool = False) -> tuple[Report, str]:
    """The report and the role under which `actor` handles it. Someone without a handling role
    learns nothing (404); a handler outside its market and region is refused (OUT_OF_SCOPE,
    which app.core.http answers as the report's 404 so ids cannot be probed)."""
    report = get_report(report_id)
    try:
        return report, authorize(actor, roles, report_target(report))
    except Forbidden:
        raise NotFound(code="REPORT_NOT_FOUND")


def handler_ids(report: Report) -> list[int]:
    """Who is told of a new report: the market's managers, else (or for a report without a
    market) the most specific regulators covering its region."""
    from app.identity.models import RoleGrant

    if report.market_id is not None:
        managers = list(db.session.scalars(select(RoleGrant.user_id).where(
            RoleGrant.role == "market_manager", RoleGrant.scope_type == "market",
            RoleGrant.scope_id == str(report.market_id), RoleGrant.revoked_at.is_(None))))
        if managers:
            return sorted(set(managers))
    return regulators_of(report.region_code, regulator_grants())


def regulator_grants() -> list[tuple[int, str]]:
    from app.identity.models import RoleGrant

    return db.session.execute(select(RoleGrant.user_id, RoleGrant.scope_id).where(
        RoleGrant.role == "regulator", RoleGrant.scope_type == "region", RoleGrant.revoked_at.is_(None))).all()


def regulators_of(region_code: str, grants: list[tuple[int, str]]) -> list[int]:
    """The regulators nearest to the region: those whose region covers it most specifically
    (the county's own; failing that, the city's; then the province's)."""
    covering = [(len(code_prefix(scope)), user_id) for user_id, scope in grants if region_covers(scope, region_code)]
    if not covering:
        return []
    nearest = max(depth for depth, _ in covering)
    return sorted({user_id for depth, user_id in covering if depth == nearest})


def _tell_handlers(report: Report, label: str, now: datetime) -> None:
    place = report.shop_name or "市场摊位"
    enqueue([Reminder(user_id=user_id, kind="report_new", subject=f"report:{report.id}", period="new",
                      title="新的骑手随手拍待受理", channel="inbox",
                      body=f"骑手反映「{place}」存在{label}问题，请在 1 个工作日内受理、7 日内办结。",
                      page=f"pages/reports/detail?id={report.id}")
             for user_id in handler_ids(report)], now)


# -- the handling loop ----------------------------------------------------------------------------
def accept(actor, report_id: int) -> Report:
    report, role = handle(actor, report_id)
    now = utcnow()
    compare_and_set(report, "open", {"status": "accepted", "accepted_at": now, "accepted_by_id": actor.id},
                    "REPORT_NOT_OPEN")
    _event(report, "accepted", actor, now)
    audit.record("report.accept", "report", report.id, actor=actor, actor_role=role,
                 before={"status": "open"}, after={"status": "accepted"}, region_code=report.region_code)
    _tell_reporter(report, "accepted", "您的随手拍已受理", "您提交的随手拍已由属地受理，将在 7 日内办结。", now)
    return report


def decide(actor, report_id: int, decision: str, note: str | None) -> Report:
    """属实 (upheld) or 不属实 (unfounded, with a note saying why). Closing the report moves its
    location to its cell's centre in the same statement; an upheld one earns its reporter the
    category's points (once, within the daily cap) and, on a stall, shows on the stall's badge."""
    report, role = handle(actor, report_id)
    if report.status == "open":
        raise APIError(code="REPORT_NOT_ACCEPTED", details={"status": "open"})
    note = decision_reason("dismiss" if decision == "unfounded" else "uphold", note)
    now = utcnow()
    compare_and_set(report, "accepted", {
        "status": decision, "decided_at": now, "decided_by_id": actor.id, "decision_note": note,
        "close_seconds": int((now - report.created_at).total_seconds()),
        "lat": cell_centre(report.cell_lat), "lng": cell_centre(report.cell_lng), "location_purged": True,
    }, "REPORT_ALREADY_DECIDED")
    _event(report, decision, actor, now)
    points = award_points(report, now) if decision == "upheld" else None
    if decision == "upheld" and report.stall_id is not None:
        badge_cache.changed(stall_id=report.stall_id)
    audit.record(f"report.{decision}", "report", report.id, actor=actor, actor_role=role,
                 before={"status": "accepted"}, after={"status": decision, "points": points}, reason=note,
                 region_code=report.region_code)
    if decision == "upheld":
        earned = f"您获得 {points} 积分。" if points else "今日随手拍积分已达上限，本次不再加分。"
        _tell_reporter(report, "upheld", "您的随手拍经核实属实", f"感谢您的监督！经核实情况属实，已督促整改。{earned}", now,
                       reason=note)
    else:
        _tell_reporter(report, "unfounded", "您的随手拍核实结果", "经现场核实，您反映的情况不属实。", now, reason=note)
    return report


def rectified(actor, report_id: int, note: str | None, photo: bytes | None) -> Report:
    """The handler records that the problem of an upheld report is put right (optionally with a
    photo, through the same upload pipeline); a stall's badge stops counting it at once."""
    report, role = handle(actor, report_id)
    if report.status != "upheld":
        raise APIError(code="REPORT_NOT_UPHELD", details={"status": report.status})
    key = storage.store_photo(photo) if photo else None
    now = utcnow()
    compare_and_set(report, "upheld", {"status": "rectified", "rectified_at": now, "rectified_by_id": actor.id,
                                       "rectification_note": (note or "").strip() or None,
                                       "rectification_photo_key": key}, "REPORT_NOT_UPHELD")
    _event(report, "rectified", actor, now)
    if report.stall_id is not None:
        badge_cache.changed(stall_id=report.stall_id)
    audit.record("report.rectified", "report", report.id, actor=actor, actor_role=role,
                 before={"status": "upheld"}, after={"status": "rectified", "photo": key is not None},
                 reason=report.rectification_note, region_code=report.region_code)
    _tell_reporter(report, "rectified", "您反映的问题已整改", "您反映并经核实的问题已整改完毕，感谢您的监督。", now)
    return report


def transfer(actor, report_id: int, region_code: str, note: str | None) -> Report:
    """A regulator sends a report to the region it belongs to; it waits there for acceptance
    again (its seven days still count from filing), handled by that region's regulators."""
    report, role = handle(actor, report_id, roles=("regulator",))
    if report.status not in OPEN_STATUSES:
        raise APIError(code="REPORT_CLOSED", details={"status": report.status})
    region = db.session.get(Region, region_code)
    if region is None:
        raise APIError(code="REGION_NOT_FOUND", details={"region_code": region_code})
    if region.code == report.region_code and report.market_id is None:
        raise APIError(code="REPORT_TRANSFER_SAME_REGION", details={"region_code": region_code})
    before = {"region_code": report.region_code, "market_id": report.market_id, "status": report.status}
    now = utcnow()
    compare_and_set(report, Report.status.in_(OPEN_STATUSES), {
        "region_code": region.code, "market_id": None, "status": "open", "accepted_at": None,
        "accepted_by_id": None, "accept_due_at": add_working_days(now, ACCEPT_WITHIN_WORKING_DAYS)}, "REPORT_CLOSED")
    _event(report, "transferred", actor, now, region_code=region.code)
    note = (note or "").strip() or None
    audit.record("report.transfer", "report", report.id, actor=actor, actor_role=role, before=before,
                 after={"region_code": region.code, "market_id": None, "status": "open"}, reason=note,
                 region_code=before["region_code"])
    _tell_handlers(report, _category_label(report.category_code), now)
    _tell_reporter(report, "transferred", "您的随手拍已转办", f"您提交的随手拍已转交{region.name}处理。", now)
    return report


def _category_label(code: str) -> str:
    category = db.session.get(ReportCategory, code)
    return category.label if category else code


def _tell_reporter(report: Report, outcome: str, title: str, body: str, at: datetime,
                   reason: str | None = None) -> None:
    notices.tell(report.reporter_id, kind="report_progress", subject=f"report:{report.id}", outcome=outcome,
                 title=title, body=body, page=f"pages/reports/detail?id={report.id}", at=at, reason=reason)


# -- points ---------------------------------------------------------------------------------------
def daily_cap() -> int:
    return int(current_app.config.get("REPORTS_POINTS_DAILY_CAP", DEFAULT_DAILY_POINTS_CAP))


def award_points(report: Report, now: datetime) -> int:
    """The category's points (as set for the report's region) to the reporter, in the
    append-only ledger: one award per report (rider_report_awards' key is the report), and no
    more than the daily cap for the reports a rider filed on one local day, so filing many
    small reports does not farm points. Returns the points given."""
    from app.activities.models import PointsEntry
    from app.identity.models import User

    amount = region_points(report.region_code).get(report.category_code, 0)
    day = local_today(report.created_at)
    if is_postgres():  # one award decision per rider at a time (SQLite: the writer already holds the lock)
        db.session.execute(select(User.id).where(User.id == report.reporter_id).with_for_update())
    already = db.session.scalar(select(func.coalesce(func.sum(ReportAward.points), 0)).where(
        ReportAward.user_id == report.reporter_id, ReportAward.day == day)) or 0
    points = max(0, min(amount, daily_cap() - int(already)))
    inserted = insert_ignore(ReportAward, {"report_id": report.id, "user_id": report.reporter_id, "day": day,
                                           "points": points, "capped": points < amount, "created_at": now},
                             ["report_id"])
    if inserted and points > 0:
        db.session.add(PointsEntry(user_id=report.reporter_id, org_id=_station_org(report.reporter_id),
                                   reason="report", delta=points, created_at=now))
        db.session.flush()
    return points if inserted else 0


def _station_org(user_id: int) -> int | None:
    """The rider's station, so the points count on its leaderboard."""
    from app.orgs.models import StationRider

    return db.session.scalar(select(StationRider.org_id).where(StationRider.user_id == user_id)
                             .order_by(StationRider.joined_at.desc(), StationRider.id.desc()).limit(1))


def photo_of(actor, report_id: int, key: str, thumb: bool):
    """A report's photo (or its rectification photo) for its reporter and its handlers."""
    report = get_report(report_id)
    if report.reporter_id != actor.id:
        handle(actor, report_id)
    if key not in (report.photo_keys or []) and key != report.rectification_photo_key:
        raise APIError(code="PHOTO_NOT_FOUND")
    return storage.read_photo(key, thumb)
