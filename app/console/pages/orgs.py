"""组织与活动 (issue 15 item 5): the party organisations the caller runs, their members (verify a
claim as POST /memberships/{id}/review does), the activities calendar (a month as a list), an
activity's attendance with the xlsx export, and the rotating check-in code full-screen for a
projector (the code, the title, a countdown to the next code and the live count of check-ins).

Every view goes through the API's services with `g.console_user`: organisations outside the
caller's scope are 404, as for the API."""
from __future__ import annotations

import base64
import io
from datetime import date, timedelta

from flask import g, jsonify, redirect, request, send_file, url_for
from sqlalchemy import func, select

from app.activities import checkin as checkin_service
from app.activities import queries as activity_queries
from app.activities import services as activity_services
from app.activities.export import attendance_filename, attendance_xlsx
from app.activities.models import CheckIn
from app.console.blueprint import bp, render_page
from app.console.forms import Form
from app.console.pages.markets import _page_number, _pages, region_name
from app.core.errors import APIError, NotFound
from app.core.ids import typed_int
from app.core.time import local_today, to_local, utcnow
from app.extensions import db
from app.identity.auth import has_role
from app.identity.people import card
from app.orgs import services as org_services
from app.orgs.models import MEMBER_STANDINGS, ORG_KINDS, ORG_SECTORS
from app.orgs.queries import organised_orgs_clause
from app.worklists import orgs as worklists

ORGS_PER_PAGE = 20
MEMBERS_PER_PAGE = 50
CALENDAR_PER_PAGE = 100
WEEKDAYS = "一二三四五六日"
# How often the projector asks for the count (the code itself changes every SLOT_SECONDS).
PROJECTOR_POLL_MS = 3000
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NOTICES = {"approve": "已确认该党员身份。", "reject": "已驳回该申请，申请人会收到原因。"}


def local_time(value, pattern: str = "%Y-%m-%d %H:%M") -> str:
    return to_local(value).strftime(pattern) if value else ""


# -- organisations ------------------------------------------------------------------------------
@bp.get("/orgs")
def orgs():
    """The organisations the caller runs (GET /orgs narrowed to organised_orgs_clause)."""
    form = Form(request.args.copy())
    q, kind = form.value("q").strip(), form.value("kind")
    if len(q) > 50:
        form.add_error("q", "最多 50 个字")
    if kind and kind not in ORG_KINDS:
        form.add_error("kind", "请选择组织类型")
    result = None
    if form.ok:
        result = worklists.find_orgs(None, kind or None, None, q or None, _page_number(), ORGS_PER_PAGE,
                                     within=organised_orgs_clause(g.console_user))
    rows = [{"org": org, "kind": ORG_KINDS.get(org.kind, org.kind), "sector": ORG_SECTORS.get(org.sector, org.sector),
             "region": region_name(org.region_code)} for org in (result["items"] if result else [])]
    return render_page("console/orgs.html", nav_key="orgs", title="组织与活动", form=form, rows=rows, result=result,
                       pages=_pages(result), kinds=list(ORG_KINDS.items()), status=200 if form.ok else 422)


@bp.get("/orgs/<int:org_id>")
def org(org_id: int):
    return _org_page(org_id)


def _org_page(org_id: int, review: tuple[int, Form] | None = None, notice: str | None = None, status: int = 200):
    organisation = org_services.get_org(org_id)
    org_services.authorize_organiser(g.console_user, organisation)
    reviewer = has_role(g.console_user, *org_services.MEMBERSHIP_REVIEWER_ROLES)
    pending = members = None
    if reviewer:
        try:
            pending = org_services.list_memberships(g.console_user, organisation, "pending", 1, 100)
            members = worklists.members(g.console_user, organisation.id, _page_number(), MEMBERS_PER_PAGE)
        except APIError as error:  # a secretary of another branch who manages this market's org
            if error.status != 403:
                raise
            reviewer = False
    today = local_today()
    upcoming = activity_queries.visible_activities(g.console_user, organisation.id, today, None, 1, 10)
    return render_page(
        "console/org.html", nav_key="orgs", title=organisation.name, org=organisation,
        kind=ORG_KINDS.get(organisation.kind), sector=ORG_SECTORS.get(organisation.sector),
        region=region_name(organisation.region_code), reviewer=reviewer, pending=pending, members=members,
        pages=_pages(members), card=card, standings=MEMBER_STANDINGS, upcoming=upcoming["items"],
        local_time=local_time, review=review, notice=notice or NOTICES.get(request.args.get("done", "")),
        status=status)


@bp.post("/memberships/<int:membership_id>/review")
def review_membership(membership_id: int):
    """Verify (approve) or reject a claim: the service of POST /memberships/{id}/review."""
    membership = org_services.get_membership(membership_id)
    form = Form.from_request()
    decision = form.value("decision")
    if decision not in ("approve", "reject"):
        form.add_error("reason", "请选择确认或驳回")
    elif len(form.value("reason")) > 500:
        form.add_error("reason", "最多 500 个字")
    if form.ok:
        try:
            org_services.review_membership(g.console_user, membership_id, decision, form.value("reason"))
            return redirect(url_for("console.org", org_id=membership.org_id, done=decision, _anchor="pending"), 303)
        except APIError as error:
            if error.code == "MEMBERSHIP_ALREADY_DECIDED":  # someone else decided meanwhile
                return _org_page(membership.org_id, notice="该申请已由他人处理，列表已更新。", status=409)
            if error.code != "REASON_REQUIRED":
                raise
            form.refuse(error)
    return _org_page(membership.org_id, review=(membership_id, form), status=422)


# -- the calendar -----------------------------------------------------------------------------------
def _month(value: str) -> date:
    try:
        if not value.isascii():  # int() reads full-width digits; a URL's month is ASCII
            raise ValueError(value)
        year, month = (int(part) for part in value.split("-"))
        if not 2000 <= year <= 2999:  # the previous and next months must exist too
            raise ValueError(value)
        return date(year, month, 1)
    except (ValueError, TypeError):
        today = local_today()
        return today.replace(day=1)


@bp.get("/activities")
def activities():
    """A month of activities (GET /activities: queries.visible_activities), day by day."""
    first = _month(request.args.get("month", ""))
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    org_id = request.args.get("org", "")
    org_id = typed_int(org_id)
    organisation = None
    if org_id is not None:
        organisation = org_services.get_org(org_id)
        try:
            org_services.authorize_organiser(g.console_user, organisation)
        except APIError as error:  # as for /orgs/<id>: another's organisation does not exist
            if error.code != "OUT_OF_SCOPE":
                raise
            raise NotFound(code="ORG_NOT_FOUND")
    page = activity_queries.visible_activities(g.console_user, org_id, first, last, _page_number(), CALENDAR_PER_PAGE)
    names = {}
    days: dict[date, list] = {}
    for activity in page["items"]:
        if activity.org_id not in names:
            names[activity.org_id] = org_services.get_org(activity.org_id).name
        days.setdefault(to_local(activity.starts_at).date(), []).append(activity)
    previous = (first - timedelta(days=1)).replace(day=1)
    following = last + timedelta(days=1)
    return render_page(
        "console/activities.html", nav_key="orgs", title="活动日历", first=first, days=sorted(days.items()),
        names=names, weekdays=WEEKDAYS, today=local_today(), org=organisation, org_id=org_id,
        previous=f"{previous:%Y-%m}", following=f"{following:%Y-%m}", this_month=f"{local_today():%Y-%m}",
        total=page["total"], pages=_pages(page), local_time=local_time)


# -- one activity ----------------------------------------------------------------------------------
def _organised_activity(activity_id: int):
    activity = activity_services.get_activity(activity_id)
    activity_services.authorize_activity_organiser(g.console_user, activity)
    return activity


@bp.get("/activities/<int:activity_id>")
def activity(activity_id: int):
    """The activity and its attendance (GET /activities/{id}/attendance)."""
    found = _organised_activity(activity_id)
    sheet = activity_queries.attendance(found)
    organisation = activity_services.activity_org(found)
    now = utcnow()
    return render_page(
        "console/activity.html", nav_key="orgs", title=found.title, activity=found, org=organisation,
        sheet=sheet, local_time=local_time, checkin_open=found.checkin_opens_at <= now <= found.checkin_closes_at,
        checkin_over=now > found.checkin_closes_at)


@bp.get("/activities/<int:activity_id>/attendance.xlsx")
def attendance_export(activity_id: int):
    found = _organised_activity(activity_id)
    sheet = activity_queries.attendance(found)
    organisation = activity_services.activity_org(found)
    # send_file names it in Chinese (RFC 6266 filename*, with an ASCII fallback), as the API does.
    return send_file(io.BytesIO(attendance_xlsx(found, organisation.name, sheet)), mimetype=XLSX_TYPE,
                     as_attachment=True, download_name=attendance_filename(found))


@bp.get("/activities/<int:activity_id>/projector")
def projector(activity_id: int):
    """Full screen for a projector: the page asks checkin_code() every few seconds."""
    found = _organised_activity(activity_id)
    organisation = activity_services.activity_org(found)
    return render_page("console/projector.html", title=f"签到：{found.title}", activity=found, org=organisation,
                       local_time=local_time, poll_ms=PROJECTOR_POLL_MS)


@bp.get("/activities/<int:activity_id>/checkin-code")
def checkin_code(activity_id: int):
    """The current code (the service of GET /activities/{id}/checkin-code) as a data: image,
    and how many have checked in so far."""
    activity, code = activity_services.checkin_code(g.console_user, activity_id)
    png = checkin_service.code_png(code["payload"])
    now = utcnow()
    if now < activity.checkin_opens_at:
        window = "not_open"
    elif now > activity.checkin_closes_at:
        window = "closed"
    else:
        window = "open"
    return jsonify({
        "activity_id": activity.id, "title": activity.title, "slot": code["slot"],
        "expires_in": code["expires_in"], "slot_seconds": checkin_service.SLOT_SECONDS,
        "image": "data:image/png;base64," + base64.b64encode(png).decode(),
        "checked_in": checked_in_count(activity.id), "window": window,
        "opens_at": local_time(activity.checkin_opens_at), "closes_at": local_time(activity.checkin_closes_at),
    })


def checked_in_count(activity_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(CheckIn).where(CheckIn.activity_id == activity_id)) or 0
