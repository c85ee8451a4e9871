"""导出: the coverage table, a market's pledge ledger and an activity's attendance sheet (xlsx),
through the API's own services and scope checks:

- 覆盖情况统计表: app.stats.export.overview_xlsx directly while the region is small
  (stats.jobs.refuse_direct_export_if_large), else the `overview_export` job (submit_overview_export);
- 诚信经营承诺台账: app.pledges.exports.market_pledges_xlsx directly up to DIRECT_LEDGER_MAX_PLEDGES,
  else the `pledge_ledger` job (submit_pledge_ledger);
- 签到表: app.activities.export.attendance_xlsx for an activity the caller organises.

The forms post (with the CSRF token: no token in a URL); the downloads answer GET too (a link).
A job's progress shows on this page (static/jobs.js, pages/jobs.py). A refusal (too large for a
direct download, out of scope, not found) comes back on this page next to its form, in Chinese."""
from __future__ import annotations

import io
from datetime import timedelta

from flask import g, request, send_file

from app.console.blueprint import bp, render_page
from app.console.pages.jobs import job_submitted
from app.console.sessions import console_grants
from app.core.errors import APIError
from app.core.ids import typed_int
from app.core.time import local_today, to_local, utcnow
from app.pledges.models import PLEDGE_STATUSES, STATUS_LABELS

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MARKETS_LISTED = 100  # markets in the ledger's list (a search narrows a larger scope)
ACTIVITY_DAYS_BACK = 180  # activities offered for the attendance sheet: the last half year and the next month
# The ledger's status filter: the API's values (ExportQuerySchema) with the pledges' own labels.
PLEDGE_STATUS_CHOICES = (("", "全部"), *((status, STATUS_LABELS[status]) for status in PLEDGE_STATUSES))
SECTIONS = ("coverage", "ledger", "attendance")


@bp.get("/exports")
def exports():
    return _page()


def _page(refusals: dict | None = None, status: int = 200):
    """The exports page; `refusals` maps a section to the message shown next to its form."""
    user = g.console_user
    roles = {grant.role for grant in console_grants(user)}
    q = (request.args.get("q") or "").strip()[:50]
    context = {
        "coverage": _coverage_choices(user) if roles & {"regulator", "admin"} else None,
        "ledger": _ledger_markets(user, q) if roles & {"regulator", "admin", "market_manager"} else None,
        "attendance": _activities(user),
        "pledge_statuses": PLEDGE_STATUS_CHOICES,
        "q": q, "refusals": refusals or {}, "chosen": request.values,
    }
    return render_page("console/exports.html", nav_key="exports", title="导出", status=status, **context)


def _refused(section: str, error: APIError, missing: str | None = None):
    """The page again with `error` next to `section`'s form. `missing`: the code of the object
    the form named, which an outsider's refusal is shown as (as the API hides existence)."""
    from app.core.errors import NOT_VISIBLE

    if missing and error.code in NOT_VISIBLE:
        error = APIError(code=missing)
    return _page({section: error.message}, error.status)


def _xlsx(data: bytes, filename: str):
    return send_file(io.BytesIO(data), mimetype=XLSX, as_attachment=True, download_name=filename)


# -- the coverage table ---------------------------------------------------------------------------
def _coverage_choices(user) -> list[dict]:
    """The regions a regulator may export: their own and each one's children (admins: the country
    and the provinces)."""
    from app.identity.auth import scopes_of
    from app.stats.queries import NATIONAL
    from app.stats.services import child_regions
    from app.console.pages.home import _region_name

    grants = scopes_of(user, "regulator")
    if any(grant.role == "admin" for grant in grants):
        tops = [NATIONAL]
    else:
        tops = sorted({grant.scope_id for grant in grants if grant.scope_type == "region"})
    choices = []
    for code in tops:
        choices.append({"code": code, "name": "全国" if code == NATIONAL else _region_name(code)})
        choices.extend({"code": child.code, "name": f"　{child.name}"} for child in child_regions(code))
    return choices


@bp.route("/exports/coverage.xlsx", methods=["GET", "POST"])
def export_coverage():
    from app.stats.export import overview_filename, overview_xlsx
    from app.stats.jobs import refuse_direct_export_if_large
    from app.stats.services import overview

    region = request.values.get("region") or None
    try:
        refuse_direct_export_if_large(g.console_user, region)
        data = overview(g.console_user, region, per_page=None)
    except APIError as error:
        return _refused("coverage", error)
    return _xlsx(overview_xlsx(data), overview_filename(data))


@bp.post("/exports/coverage-jobs")
def export_coverage_job():
    from app.stats.jobs import submit_overview_export

    try:
        job = submit_overview_export(g.console_user, request.form.get("region") or None)
    except APIError as error:
        return _refused_or_envelope("coverage", error)
    return job_submitted(job)


def _refused_or_envelope(section: str, error: APIError, missing: str | None = None):
    """A refused job: the envelope to jobs.js's fetch, the page to a plain form."""
    from app.console.security import wants_json
    from app.core.errors import NOT_VISIBLE

    if wants_json():
        raise APIError(code=missing) if missing and error.code in NOT_VISIBLE else error
    return _refused(section, error, missing)


# -- the pledge ledger ----------------------------------------------------------------------------
def _ledger_markets(user, q: str) -> dict:
    from app.worklists.markets import list_markets

    page = list_markets(user, None, q or None, 1, MARKETS_LISTED)
    return {"markets": [{"id": market.id, "name": market.name, "region_code": market.region_code}
                        for market in page["items"]], "total": page["total"]}


def _ledger_args(source) -> tuple[int | None, str | None]:
    market = source.get("market_id", "")
    status = source.get("status") or None
    if status not in {value for value, _ in PLEDGE_STATUS_CHOICES if value}:
        status = None
    return typed_int(market), status


@bp.route("/exports/pledges.xlsx", methods=["GET", "POST"])
def export_ledger():
    from app.pledges.exports import market_pledges_xlsx
    from app.pledges.jobs import ledger_filename, ledger_market, refuse_direct_ledger_if_large

    market_id, status = _ledger_args(request.values)
    try:
        if market_id is None:
            raise APIError(code="VALIDATION_ERROR", message="请选择市场")
        ledger_market(g.console_user, market_id)  # access first: an outsider learns nothing of its size
        refuse_direct_ledger_if_large(market_id, status)
        now = utcnow()
        market, data = market_pledges_xlsx(g.console_user, market_id, status, now=now)
    except APIError as error:
        return _refused("ledger", error, "MARKET_NOT_FOUND")
    return _xlsx(data, ledger_filename(market, now))


@bp.post("/exports/pledge-ledger-jobs")
def export_ledger_job():
    from app.pledges.jobs import submit_pledge_ledger

    market_id, status = _ledger_args(request.form)
    try:
        if market_id is None:
            raise APIError(code="VALIDATION_ERROR", message="请选择市场")
        job = submit_pledge_ledger(g.console_user, market_id, status)
    except APIError as error:
        return _refused_or_envelope("ledger", error, "MARKET_NOT_FOUND")
    return job_submitted(job)


# -- the attendance sheet -------------------------------------------------------------------------
def _activities(user) -> list[dict] | None:
    """Activities of the organisations the caller runs (as the API's organisers), recent first;
    None when they run none."""
    from app.activities.queries import visible_activities
    from app.orgs.queries import organised_org_ids

    organised = organised_org_ids(user)
    if organised is not None and not organised:
        return None
    today = local_today()
    page = visible_activities(user, None, today - timedelta(days=ACTIVITY_DAYS_BACK), today + timedelta(days=31), 1, 100)
    rows = [activity for activity in page["items"] if organised is None or activity.org_id in organised]
    rows.sort(key=lambda activity: activity.starts_at, reverse=True)
    return [{"id": activity.id, "label": f"{to_local(activity.starts_at):%Y-%m-%d %H:%M} {activity.title}"}
            for activity in rows]


@bp.route("/exports/attendance.xlsx", methods=["GET", "POST"])
def export_attendance():
    from app.activities import queries, services
    from app.activities.export import attendance_filename, attendance_xlsx

    value = request.values.get("activity_id", "")
    try:
        if typed_int(value) is None:
            raise APIError(code="VALIDATION_ERROR", message="请选择活动")
        activity = services.get_activity(typed_int(value))
        services.authorize_activity_organiser(g.console_user, activity)
        sheet = queries.attendance(activity)
        org = services.activity_org(activity)
    except APIError as error:
        return _refused("attendance", error, "ACTIVITY_NOT_FOUND")
    return _xlsx(attendance_xlsx(activity, org.name, sheet), attendance_filename(activity))
