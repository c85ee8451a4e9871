"""Read side of activities: who may take part, what a user sees, attendance, points, nearby
care stations."""
from __future__ import annotations

import math
from datetime import date, datetime

from sqlalchemy import func, or_, select

from app.activities.audience import audience_user_ids, org_roster_ids
from app.activities.models import Activity, CareStation, CheckIn, CheckInRefusal, LeaveRequest, PointsEntry, Registration
from app.core.geo import haversine_m
from app.core.pagination import paginate
from app.core.time import local_midnight_utc
from app.extensions import db
from app.identity.models import User
from app.identity.services import display_name, mask_phone, public_name
from app.orgs.queries import organised_org_ids, station_org_ids, verified_org_ids

METRES_PER_DEGREE = 111_320.0




# -- lists --------------------------------------------------------------------------------------
def visible_activities(user, org_id: int | None, start: date | None, end: date | None,
                       page: int, per_page: int) -> dict:
    """Activities of the user's organisations (member), the open rider activities of their
    stations, and those of organisations they run through a role; by start time."""
    stmt = select(Activity)
    organised = organised_org_ids(user)
    if organised is not None:
        member_orgs = set(verified_org_ids(user.id)) | organised
        stations = station_org_ids(user.id)
        clauses = [Activity.org_id.in_(member_orgs)] if member_orgs else []
        if stations:
            clauses.append((Activity.org_id.in_(stations)) & (Activity.audience == "station_riders"))
        if not clauses:
            return {"items": [], "total": 0, "page": page, "per_page": per_page}
        stmt = stmt.where(or_(*clauses))
    if org_id is not None:
        stmt = stmt.where(Activity.org_id == org_id)
    if start is not None:
        stmt = stmt.where(Activity.starts_at >= local_midnight_utc(start))
    if end is not None:
        from app.core.time import end_of_local_day_utc

        stmt = stmt.where(Activity.starts_at < end_of_local_day_utc(end))
    return paginate(stmt.order_by(Activity.starts_at, Activity.id), page, per_page)


# -- attendance -------------------------------------------------------------------------------
STATE_ORDER = {"present": 0, "late": 1, "on_leave": 2, "absent": 3}
STATE_LABELS = {"present": "按时签到", "late": "迟到", "on_leave": "请假", "absent": "缺席"}


def attendance(activity: Activity) -> dict:
    """Who came (on time or late), who is on approved leave, who is absent; names shown,
    phones masked. The roster is the audience plus anyone who registered, asked for leave or
    was checked in."""
    checkins = {c.user_id: c for c in db.session.scalars(select(CheckIn).where(CheckIn.activity_id == activity.id))}
    leaves = {l.user_id: l for l in db.session.scalars(select(LeaveRequest).where(LeaveRequest.activity_id == activity.id))}
    registered = set(db.session.scalars(select(Registration.user_id).where(Registration.activity_id == activity.id)))
    roster = audience_user_ids(activity) | set(checkins) | registered | set(leaves)
    users = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(roster)))} if roster else {}
    rows = []
    for user_id in roster:
        user = users.get(user_id)
        if user is None:
            continue
        checkin, leave = checkins.get(user_id), leaves.get(user_id)
        if checkin is not None:
            state = "present" if checkin.status == "on_time" else "late"
        elif leave is not None and leave.status == "approved":
            state = "on_leave"
        else:
            state = "absent"
        rows.append({
            "user_id": user_id, "name": display_name(user), "phone": mask_phone(user.phone),
            "state": state, "state_label": STATE_LABELS[state], "registered": user_id in registered,
            "checked_in_at": checkin.checked_in_at if checkin else None,
            "method": checkin.method if checkin else None,
            "distance_m": checkin.distance_m if checkin else None,
            "location_flagged": bool(checkin and checkin.flagged),
            "leave_status": leave.status if leave else None,
            "leave_reason": leave.reason if leave else None,
        })
    rows.sort(key=lambda r: (STATE_ORDER[r["state"]], r["checked_in_at"] or datetime.max, r["name"], r["user_id"]))
    counts = {state: sum(1 for r in rows if r["state"] == state) for state in STATE_ORDER}
    counts.update({
        "expected": len(rows), "checked_in": len(checkins), "registered": len(registered),
        "location_flagged": sum(1 for c in checkins.values() if c.flagged),
        "refused_scans": int(db.session.scalar(select(func.coalesce(func.sum(CheckInRefusal.count), 0))
                                               .where(CheckInRefusal.activity_id == activity.id))),
    })
    return {"activity_id": activity.id, "title": activity.title, "counts": counts, "rows": rows}


# -- points -----------------------------------------------------------------------------------
def points_balance(user_id: int) -> int:
    return int(db.session.scalar(select(func.coalesce(func.sum(PointsEntry.delta), 0))
                                 .where(PointsEntry.user_id == user_id)) or 0)


def points_page(user_id: int, page: int, per_page: int) -> dict:
    result = paginate(select(PointsEntry).where(PointsEntry.user_id == user_id)
                      .order_by(PointsEntry.created_at.desc(), PointsEntry.id.desc()), page, per_page)
    result["balance"] = points_balance(user_id)
    return result


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    """The current Asia/Shanghai calendar month as naive UTC [start, end)."""
    from app.core.time import local_today

    today = local_today(now)
    first = today.replace(day=1)
    following = (first.replace(year=first.year + 1, month=1) if first.month == 12
                 else first.replace(month=first.month + 1))
    return local_midnight_utc(first), local_midnight_utc(following)


def leaderboard(org_id: int, period: str, now: datetime, limit: int, viewer_id: int,
                full_names: bool) -> dict:
    """Members and station riders of the organisation ranked by points earned in it.

    Organisers (`full_names`) see who is who. Everyone else sees each person's standing (rank
    and points) under a masked name unless that person chose to show it, their own entry in
    full (`me`), and no user ids."""
    stmt = (select(PointsEntry.user_id, func.sum(PointsEntry.delta))
            .where(PointsEntry.org_id == org_id).group_by(PointsEntry.user_id))
    bounds = None
    if period == "month":
        bounds = month_bounds(now)
        stmt = stmt.where(PointsEntry.created_at >= bounds[0], PointsEntry.created_at < bounds[1])
    totals = {user_id: int(total or 0) for user_id, total in db.session.execute(stmt)}
    roster = org_roster_ids(org_id)
    users = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(roster)))} if roster else {}
    ranked = sorted(users.values(), key=lambda u: (-totals.get(u.id, 0), display_name(u), u.id))
    items, previous, rank = [], None, 0
    for position, user in enumerate(ranked, start=1):
        points = totals.get(user.id, 0)
        if points != previous:
            rank, previous = position, points
        items.append({"rank": rank, "points": points, "is_me": user.id == viewer_id,
                      "user_id": user.id if full_names or user.id == viewer_id else None,
                      "name": display_name(user) if full_names else public_name(user, viewer_id)})
    from app.core.time import isoformat_local

    return {"org_id": org_id, "period": period,
            "from": isoformat_local(bounds[0]) if bounds else None,
            "to": isoformat_local(bounds[1]) if bounds else None,
            "items": items[:limit], "total": len(items),
            "me": next((item for item in items if item["is_me"]), None)}


# -- care stations ----------------------------------------------------------------------------
def bounding_box(lat: float, lng: float, radius_m: float) -> tuple[float, float, float, float]:
    """A lat/lng box that contains the circle (generous at the edges; haversine decides)."""
    dlat = radius_m / METRES_PER_DEGREE * 1.01
    cos_lat = max(math.cos(math.radians(lat)), 0.01)
    dlng = min(radius_m / (METRES_PER_DEGREE * cos_lat) * 1.01, 180.0)
    return lat - dlat, lat + dlat, lng - dlng, lng + dlng


class NearbyStation:
    """A care station seen from somewhere: its fields plus the distance in metres."""

    def __init__(self, station: CareStation, distance_m: int) -> None:
        self.station = station
        self.distance_m = distance_m

    def __getattr__(self, name: str):
        return getattr(self.station, name)


def nearby_care_stations(lat: float, lng: float, radius_m: float, page: int, per_page: int) -> dict:
    """Nearest first with distances in metres: an indexed box prefilter in SQL, the exact
    haversine distance in Python."""
    south, north, west, east = bounding_box(lat, lng, radius_m)
    stmt = select(CareStation).where(CareStation.lat.between(south, north), CareStation.closed_at.is_(None))
    if west < -180 or east > 180:  # the box crosses the antimeridian: two longitude ranges
        if east - west < 360:
            stmt = stmt.where(or_(CareStation.lng >= (west + 540) % 360 - 180,
                                  CareStation.lng <= (east + 540) % 360 - 180))
    else:
        stmt = stmt.where(CareStation.lng.between(west, east))
    found = []
    for station in db.session.scalars(stmt):
        distance = haversine_m(lat, lng, station.lat, station.lng)
        if distance <= radius_m:
            found.append((distance, station.id, station))
    found.sort(key=lambda item: (item[0], item[1]))
    start = (page - 1) * per_page
    items = [NearbyStation(station, round(distance)) for distance, _, station in found[start:start + per_page]]
    return {"items": items, "total": len(found), "page": page, "per_page": per_page}
