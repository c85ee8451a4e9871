"""Activities: scheduling and cancelling, registration and leave, manual check-in, points
adjustments, care stations. Services flush, never commit (one transaction per request)."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from app.activities import errors  # noqa: F401  registers the codes
from app.activities.checkin import LocationVerdict, check_window, find_checkin, record_checkin
from app.reminders import notices
from app.activities.models import Activity, CareStation, LeaveRequest, PointsEntry, Registration
from app.activities.audience import is_eligible, org_roster_ids
from app.core.review import decide, decision_reason
from app.core import audit, edits
from app.identity.auth import Target, authorize
from app.core.db import get_or_404, insert_ignore
from app.core.errors import APIError, Conflict, NotFound
from app.core.time import SHANGHAI, to_local, to_naive_utc, utcnow
from app.extensions import db
from app.identity.services import get_user
from app.core.regions import Region, region_covers
from app.orgs.models import PartyOrg
from app.orgs.services import ancestry, authorize_organiser, get_org, org_target

CHECKIN_OPENS_BEFORE = timedelta(minutes=30)


def as_utc(value: datetime) -> datetime:
    """Client times without an offset are Asia/Shanghai wall-clock times."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=SHANGHAI)
    return to_naive_utc(value)


def get_activity(activity_id: int) -> Activity:
    return get_or_404(Activity, activity_id, "ACTIVITY_NOT_FOUND")


def activity_org(activity: Activity) -> PartyOrg:
    return get_org(activity.org_id)


def authorize_activity_organiser(actor, activity: Activity) -> str:
    return authorize_organiser(actor, activity_org(activity))


def _validate_times(starts: datetime, ends: datetime, opens: datetime, closes: datetime) -> None:
    if not (starts < ends and opens < closes and opens <= ends and closes >= starts):
        raise APIError(code="ACTIVITY_TIME_INVALID")
    if ends - starts > timedelta(days=7) or closes - opens > timedelta(days=8):
        raise APIError(code="ACTIVITY_TIME_INVALID", details={"reason": "活动或签到时段过长（最长 7 天）"})


def _check_place(lat, lng, radius_m) -> None:
    """A geofence needs all three of latitude, longitude and radius, or none."""
    place = (lat, lng, radius_m)
    if any(v is not None for v in place) and not all(v is not None for v in place):
        raise APIError(code="ACTIVITY_PLACE_INCOMPLETE")


def _refuse_if_over(activity: Activity) -> None:
    """A cancelled or finished activity takes no more sign-ups or changes."""
    if activity.cancelled:
        raise APIError(code="ACTIVITY_CANCELLED", details={"reason": activity.cancel_reason})
    if utcnow() > activity.ends_at:
        raise APIError(code="ACTIVITY_ENDED")


def create_activity(actor, org: PartyOrg, data: dict) -> Activity:
    """Schedule an activity for `org`. The description passes WeChat's content check before
    anything is written ("call, then write")."""
    role = authorize_organiser(actor, org)
    starts, ends = as_utc(data["starts_at"]), as_utc(data["ends_at"])
    opens = as_utc(data["checkin_opens_at"]) if data.get("checkin_opens_at") else starts - CHECKIN_OPENS_BEFORE
    closes = as_utc(data["checkin_closes_at"]) if data.get("checkin_closes_at") else ends
    _validate_times(starts, ends, opens, closes)
    _check_place(data.get("lat"), data.get("lng"), data.get("radius_m"))
    if data.get("audience") == "station_riders" and org.sector != "rider":
        raise APIError(code="ACTIVITY_AUDIENCE_INVALID")
    activity = Activity(
        org_id=org.id, type=data["type"], title=data["title"], description=data.get("description"),
        starts_at=starts, ends_at=ends, checkin_opens_at=opens, checkin_closes_at=closes,
        place_name=data.get("place_name"), lat=data.get("lat"), lng=data.get("lng"),
        radius_m=data.get("radius_m"), capacity=data.get("capacity"), points=data.get("points") or 0,
        audience=data.get("audience") or "members", status="scheduled", created_by_id=actor.id,
    )
    db.session.add(activity)
    db.session.flush()
    audit.record("activity.create", "activity", activity.id, actor=actor, actor_role=role,
                 after={"org_id": org.id, "type": activity.type, "title": activity.title,
                        "starts_at": activity.starts_at.isoformat()})
    return activity


def view_activity(user, activity_id: int) -> Activity:
    """Organisers, and members or riders the activity is for."""
    activity = get_activity(activity_id)
    if not is_eligible(user.id, activity) and find_checkin(activity.id, user.id) is None:
        authorize_activity_organiser(user, activity)
    return activity


def cancel_activity(actor, activity_id: int, reason: str) -> Activity:
    activity = get_activity(activity_id)
    role = authorize_activity_organiser(actor, activity)
    if activity.cancelled:
        raise Conflict(code="ACTIVITY_ALREADY_CANCELLED")
    activity.status = "cancelled"
    activity.cancelled_at = utcnow()
    activity.cancel_reason = reason
    db.session.flush()
    audit.record("activity.cancel", "activity", activity.id, actor=actor, actor_role=role,
                 before={"status": "scheduled"}, after={"status": "cancelled"}, reason=reason)
    _tell_registrants(activity, "cancelled", f"“{activity.title}”已取消。", reason)
    return activity


# Fields an organiser may change on a scheduled activity (PATCH /activities/{id}).
EDITABLE = ("title", "description", "starts_at", "ends_at", "checkin_opens_at", "checkin_closes_at",
            "place_name", "lat", "lng", "radius_m", "capacity")
_TIMES = ("starts_at", "ends_at", "checkin_opens_at", "checkin_closes_at")


def update_activity(actor, activity_id: int, changes: dict) -> Activity:
    """Change the time, place or details of an activity that has not ended; registrants are
    told what changed; audited with before and after."""
    activity = get_activity(activity_id)
    role = authorize_activity_organiser(actor, activity)
    _refuse_if_over(activity)
    new = {key: as_utc(value) if key in _TIMES and value is not None else value for key, value in changes.items()}
    merged = {key: new.get(key, getattr(activity, key)) for key in EDITABLE}
    if any(merged[key] is None for key in _TIMES):
        raise APIError(code="ACTIVITY_TIME_INVALID")
    _validate_times(merged["starts_at"], merged["ends_at"], merged["checkin_opens_at"], merged["checkin_closes_at"])
    _check_place(merged["lat"], merged["lng"], merged["radius_m"])
    before, after = edits.apply(activity, new)
    if not after:
        return activity
    db.session.flush()
    audit.record("activity.update", "activity", activity.id, actor=actor, actor_role=role, before=before, after=after)
    if {"starts_at", "ends_at", "place_name", "lat", "lng"} & after.keys():
        _tell_registrants(activity, "changed", f"“{activity.title}”的时间或地点有变更：{_when_and_where(activity)}。")
    return activity


def _when_and_where(activity: Activity) -> str:
    when = f"{to_local(activity.starts_at):%m月%d日 %H:%M}–{to_local(activity.ends_at):%H:%M}"
    return f"{when}，{activity.place_name}" if activity.place_name else when


def _tell_registrants(activity: Activity, outcome: str, body: str, reason: str | None = None) -> None:
    at = utcnow()
    for user_id in db.session.scalars(select(Registration.user_id).where(Registration.activity_id == activity.id)):
        notices.tell(user_id, kind="activity_changed", subject=f"activity:{activity.id}", outcome=outcome,
                     title="活动变更通知" if outcome == "changed" else "活动取消通知", body=body,
                     page=f"pages/activity/detail?id={activity.id}", at=at, reason=reason)


def _open_for_sign_up(activity: Activity, user) -> None:
    _refuse_if_over(activity)
    if not is_eligible(user.id, activity):
        raise APIError(code="ACTIVITY_NOT_ELIGIBLE")


def register(user, activity_id: int) -> tuple[Registration, bool]:
    """Sign up (报名); a repeat returns the first registration."""
    from sqlalchemy import func

    activity = get_activity(activity_id)
    existing = db.session.scalar(select(Registration).where(
        Registration.activity_id == activity.id, Registration.user_id == user.id))
    if existing is not None:
        return existing, False
    _open_for_sign_up(activity, user)
    inserted = insert_ignore(Registration, {"activity_id": activity.id, "user_id": user.id,
                                            "created_at": utcnow()}, ["activity_id", "user_id"])
    if inserted and activity.capacity:
        from app.core.db import is_postgres

        if is_postgres():
            db.session.execute(select(Activity.id).where(Activity.id == activity.id).with_for_update())
        count = db.session.scalar(select(func.count()).select_from(Registration)
                                  .where(Registration.activity_id == activity.id))
        if count > activity.capacity:
            raise APIError(code="ACTIVITY_FULL", details={"capacity": activity.capacity})
    registration = db.session.scalar(select(Registration).where(
        Registration.activity_id == activity.id, Registration.user_id == user.id))
    return registration, bool(inserted)


def ask_leave(user, activity_id: int, reason: str) -> LeaveRequest:
    """Ask for leave (请假); a refused request may be asked again."""
    activity = get_activity(activity_id)
    _open_for_sign_up(activity, user)
    leave = db.session.scalar(select(LeaveRequest).where(
        LeaveRequest.activity_id == activity.id, LeaveRequest.user_id == user.id))
    if leave is None:
        inserted = insert_ignore(LeaveRequest, {
            "activity_id": activity.id, "user_id": user.id, "reason": reason, "status": "pending",
            "created_at": utcnow(), "updated_at": utcnow()}, ["activity_id", "user_id"])
        if not inserted:
            raise Conflict(code="LEAVE_EXISTS")
        return db.session.scalar(select(LeaveRequest).where(
            LeaveRequest.activity_id == activity.id, LeaveRequest.user_id == user.id))
    if leave.status != "rejected":
        raise Conflict(code="LEAVE_EXISTS", details={"leave_request_id": leave.id, "status": leave.status})
    leave.reason, leave.status = reason, "pending"
    leave.reviewed_by_id = leave.reviewed_at = leave.review_reason = None
    db.session.flush()
    return leave


def review_leave(actor, leave_id: int, decision: str, reason: str | None) -> LeaveRequest:
    leave = db.session.get(LeaveRequest, leave_id)
    if leave is None:
        raise NotFound(code="LEAVE_NOT_FOUND")
    role = authorize_activity_organiser(actor, get_activity(leave.activity_id))
    reason = decision_reason(decision, reason)
    decide(leave, actor, "pending", "approved" if decision == "approve" else "rejected", reason,
           "LEAVE_ALREADY_DECIDED")
    audit.record(f"leave.{decision}", "leave_request", leave.id, actor=actor, actor_role=role,
                 before={"status": "pending"}, after={"status": leave.status, "user_id": leave.user_id,
                                                      "activity_id": leave.activity_id}, reason=reason)
    activity = get_activity(leave.activity_id)
    verdict = "已批准。" if leave.status == "approved" else "未批准，请按时参加。"
    notices.tell(leave.user_id, kind="leave_decision", subject=f"leave:{leave.id}", outcome=leave.status,
                 title="请假审批结果", body=f"您对“{activity.title}”的请假{verdict}",
                 page=f"pages/activity/detail?id={activity.id}", at=leave.reviewed_at,
                 reason=reason if leave.status != "approved" else None)
    return leave


def checkin_code(actor, activity_id: int) -> tuple[Activity, dict]:
    from app.activities.checkin import current_code

    activity = get_activity(activity_id)
    authorize_activity_organiser(actor, activity)
    if activity.cancelled:
        raise APIError(code="ACTIVITY_CANCELLED", details={"reason": activity.cancel_reason})
    return activity, current_code(activity)


def manual_checkin(actor, activity_id: int, user_id: int, reason: str):
    """The organiser checks a member in by hand (phone flat, no signal…); audited. Allowed
    from the opening of the window on, including after it closed (records kept afterwards)."""
    activity = get_activity(activity_id)
    role = authorize_activity_organiser(actor, activity)
    member = get_user(user_id)
    existing = find_checkin(activity.id, member.id)
    if existing is not None:
        return existing, False
    now = utcnow()
    if activity.cancelled or now < activity.checkin_opens_at:
        check_window(activity, now)
    if not is_eligible(member.id, activity):
        raise APIError(code="CHECKIN_NOT_ELIGIBLE")
    checkin, created = record_checkin(activity, member.id, now, method="manual",
                                      verdict=LocationVerdict("manual", None, False),
                                      recorded_by_id=actor.id, manual_reason=reason)
    if created:
        audit.record("checkin.manual", "activity", activity.id, actor=actor, actor_role=role,
                     after={"checkin_id": checkin.id, "user_id": member.id, "status": checkin.status},
                     reason=reason)
    return checkin, created


# -- points -----------------------------------------------------------------------------------
def adjust_points(actor, org: PartyOrg, user_id: int, delta: int, reason: str) -> PointsEntry:
    """A secretary's correction or award: a new ledger entry with a reason, audited."""
    role = authorize(actor, ["branch_secretary"], org_target(org))
    if delta == 0:
        raise APIError(code="POINTS_DELTA_INVALID")
    member = get_user(user_id)
    if member.id not in org_roster_ids(org.id):
        raise APIError(code="POINTS_NOT_MEMBER")
    entry = PointsEntry(user_id=member.id, org_id=org.id, reason="manual", delta=delta, note=reason,
                        actor_id=actor.id, created_at=utcnow())
    db.session.add(entry)
    db.session.flush()
    audit.record("points.adjust", "user", member.id, actor=actor, actor_role=role,
                 after={"entry_id": entry.id, "org_id": org.id, "delta": delta}, reason=reason)
    return entry


def authorize_org_reader(user, org: PartyOrg) -> bool:
    """Members and station riders read their organisation's leaderboard; organisers too.
    Returns whether the reader is an organiser (who sees full names)."""
    try:
        authorize_organiser(user, org)
        return True
    except APIError:
        if user.id in org_roster_ids(org.id):
            return False
        raise


# -- care stations ----------------------------------------------------------------------------
def update_care_station(actor, station_id: int, changes: dict) -> CareStation:
    """Hours, amenities, name, address; closing takes it off the nearby list. By a regulator of
    its region or the secretary of the organisation that keeps it; audited."""
    station = get_or_404(CareStation, station_id, "CARE_STATION_NOT_FOUND")
    org = get_org(station.org_id) if station.org_id is not None else None
    role = authorize(actor, ["regulator", "branch_secretary"],
                     Target(region_code=station.region_code, org_ids=ancestry(org) if org else ()))
    if "amenities" in changes:
        changes = {**changes, "amenities": sorted(set(changes["amenities"]))}
    before, after = edits.apply(station, changes)
    if after:
        db.session.flush()
        audit.record("care_station.update", "care_station", station.id, actor=actor, actor_role=role,
                     before=before, after=after)
    return station


def create_care_station(actor, data: dict) -> CareStation:
    """Regulators keep stations in their region; secretaries in their organisation's region
    (naming the organisation)."""
    region = db.session.get(Region, data["region_code"])
    if region is None:
        raise APIError(code="REGION_NOT_FOUND", details={"region_code": data["region_code"]})
    org = get_org(data["org_id"]) if data.get("org_id") is not None else None
    role = authorize(actor, ["regulator", "branch_secretary"],
                     Target(region_code=region.code, org_ids=ancestry(org) if org else ()))
    if org is not None and role == "branch_secretary" and not region_covers(org.region_code, region.code):
        raise APIError(code="CARE_STATION_OUT_OF_REGION")
    station = CareStation(created_by_id=actor.id, **data)
    station.amenities = sorted(set(data.get("amenities") or []))
    db.session.add(station)
    db.session.flush()
    audit.record("care_station.create", "care_station", station.id, actor=actor, actor_role=role,
                 after={"name": station.name, "region_code": station.region_code})
    return station
