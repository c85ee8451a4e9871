"""首页: the dashboard of the caller's scope, through the same services as the API.

- Regulators and admins: the coverage of a region (app.stats.services.overview, the roll-ups)
  and its monthly trend (app.stats.trend.trend): headline numbers, a trend chart, a bar chart by
  child region (or by market at county level, paged), drill-down by `?region=`, a breadcrumb
  back up. The services check the region: a regulator asking outside their region gets the
  service's Chinese refusal on the page, not a 500.
- Market managers: their markets with the counts GET /markets gives (app.worklists.markets).
- Branch secretaries: their organisations with members, pending applications and this month's
  activities (the services of GET /orgs/{id}/members, …/memberships, /activities).

The charts are drawn in the browser by static/dashboard.js (Chart.js, vendored) from the JSON in
`<script type="application/json" id="dashboard-data">`; a table under each chart says the same."""
from __future__ import annotations

from datetime import timedelta

from flask import g, request, url_for

from app.console.blueprint import bp, render_page
from app.console.scopes import describe
from app.console.sessions import console_grants
from app.core.errors import APIError
from app.core.ids import page_number
from app.core.regions import Region, parent_of
from app.core.time import local_today, to_local
from app.extensions import db
from app.identity.auth import Target, grant_covers, scopes_of
from app.stats.queries import NATIONAL

TREND_MONTHS = 12
MARKETS_PER_PAGE = 20  # market rows (and bars) of a county's dashboard page
# The trend's series, in the chart's order, with their Chinese names.
TREND_SERIES = (("stalls_claimed", "已认领摊位"), ("licences_shown", "亮照摊位"),
                ("pledges_in_force", "生效承诺"), ("party_households", "党员经营户"))
# The bars of a child region or a market.
BAR_SERIES = (("stalls", "摊位"), ("stalls_claimed", "已认领"), ("licences_shown", "亮照"),
              ("pledges_in_force", "生效承诺"))


@bp.get("/")
def home():
    user = g.console_user
    roles = {grant.role for grant in console_grants(user)}
    context = {"scopes": [describe(grant) for grant in console_grants(user)], "region_view": None,
               "manager_view": None, "secretary_view": None, "refusal": None, "region_choices": None}
    status = 200
    if roles & {"regulator", "admin"}:
        try:
            context["region_view"] = region_dashboard(user, request.args.get("region"), _page_arg())
        except APIError as error:
            if error.code == "STATS_REGION_REQUIRED":  # several regions: the person picks one
                context["region_choices"] = _region_links(error.details.get("regions", []))
            else:
                context["refusal"], status = error.message, error.status
    elif "market_manager" in roles:
        context["manager_view"] = manager_dashboard(user)
    if "branch_secretary" in roles and "admin" not in roles:
        context["secretary_view"] = secretary_dashboard(user)
    return render_page("console/home.html", nav_key="home", title="首页", status=status, **context)


def _page_arg() -> int:
    return page_number(request.args.get("page"))


# -- regulators -----------------------------------------------------------------------------------
def region_dashboard(user, region_code: str | None, page: int) -> dict:
    """What a regulator's dashboard shows of a region (the services refuse one out of scope)."""
    from app.stats.services import overview
    from app.stats.trend import trend

    data = overview(user, region_code or None, page=page, per_page=MARKETS_PER_PAGE)
    region = data["region"]
    months = trend(user, region["code"], TREND_MONTHS)["months"]
    totals, party = region["totals"], data["sections"]["party_building"]["totals"]
    by_market = not data["children"]
    if by_market:
        rows = [{"label": row["name"], "code": None, "url": _market_url(row["id"]), "totals": row["totals"]}
                for row in data["markets"]]
    else:
        rows = [{"label": row["name"], "code": row["code"], "url": url_for("console.home", region=row["code"]),
                 "totals": row["totals"]} for row in data["children"]]
    paging = data["markets_page"]
    return {
        "region": region,
        "breadcrumb": breadcrumb(user, region["code"]),
        "headline": headline(totals, party),
        "by_market": by_market,
        "rows": rows,
        "direct": data["direct"] if not by_market and data["direct"]["markets"] else None,
        "paging": {**paging, "pages": max(1, -(-paging["total"] // paging["per_page"])) if paging["per_page"] else 1},
        "generated_at": f"{to_local(data['generated_at']):%Y-%m-%d %H:%M}",
        "chart": {
            "trend": {"labels": [month["month"] for month in months],
                      "series": [{"key": key, "label": label, "values": [month[key] for month in months]}
                                 for key, label in TREND_SERIES]},
            "bars": {"title": "各市场" if by_market else "各下级地区",
                     "labels": [row["label"] for row in rows],
                     "links": [row["url"] for row in rows],
                     "series": [{"key": key, "label": label, "values": [row["totals"][key] for row in rows]}
                                for key, label in BAR_SERIES]},
        },
        "trend_rows": months,
    }


def headline(totals: dict, party: dict) -> list[dict]:
    rate = totals["pledge_rate"]
    return [
        {"key": "markets", "label": "专业市场", "value": totals["markets"], "unit": "家"},
        {"key": "stalls", "label": "摊位", "value": totals["stalls"], "unit": "个"},
        {"key": "stalls_claimed", "label": "已认领摊位", "value": totals["stalls_claimed"], "unit": "个"},
        {"key": "licences_shown", "label": "亮照", "value": totals["licences_shown"], "unit": "个摊位"},
        {"key": "permits_shown", "label": "亮证", "value": totals["permits_shown"], "unit": "张"},
        {"key": "pledges_in_force", "label": "生效承诺", "value": totals["pledges_in_force"], "unit": "份"},
        {"key": "pledge_rate", "label": "承诺率", "value": None if rate is None else f"{rate * 100:.1f}",
         "unit": "%" if rate is not None else "", "hint": "有生效承诺的经营主体 / 持有摊位的经营主体"},
        {"key": "party_households", "label": "党员经营户", "value": totals["party_households"], "unit": "户"},
        {"key": "orgs", "label": "党组织", "value": party["orgs"], "unit": "个"},
        {"key": "members", "label": "党员", "value": party["members_verified"], "unit": "名"},
        {"key": "riders", "label": "站点骑手", "value": party["riders"], "unit": "名"},
    ]


def breadcrumb(user, code: str) -> list[dict]:
    """From the top the user may see down to `code`: [{name, url or None (the current one or
    above the user's scope)}]."""
    chain: list[str] = []
    current: str | None = code if code != NATIONAL else None
    while current:
        chain.append(current)
        current = parent_of(current)
    chain.append(NATIONAL)
    crumbs = []
    for each in reversed(chain):
        if not may_view_region(user, each):
            continue
        name = "全国" if each == NATIONAL else (_region_name(each))
        crumbs.append({"code": each, "name": name,
                       "url": None if each == code else url_for("console.home", region=each)})
    return crumbs


def may_view_region(user, code: str) -> bool:
    target = Target(region_code=None if code == NATIONAL else code)
    return any(grant_covers(grant, target) for grant in scopes_of(user, "regulator"))


def _region_name(code: str) -> str:
    region = db.session.get(Region, code)
    return region.name if region is not None else code


def _region_links(codes: list[str]) -> list[dict]:
    return [{"code": code, "name": _region_name(code), "url": url_for("console.home", region=code)} for code in codes]


def _market_url(market_id: int) -> str | None:
    """The market's console page, once the markets section has one."""
    from flask import current_app

    if "console.market" in current_app.view_functions:
        return url_for("console.market", market_id=market_id)
    return None


# -- market managers ------------------------------------------------------------------------------
def manager_dashboard(user) -> dict:
    """The markets a manager runs, with the counts of GET /markets."""
    from app.worklists.markets import list_markets

    page = list_markets(user, None, None, 1, 100)
    rows = [{"label": market.name, "url": _market_url(market.id), "counts": market.counts} for market in page["items"]]
    total = {key: sum(row["counts"][key] for row in rows)
             for key in ("stalls", "claimed", "pending_claims", "pending_credentials", "pending_pledges")}
    series = (("stalls", "摊位"), ("claimed", "已认领"), ("pending_claims", "待审认领"), ("pending_pledges", "待审承诺"))
    return {
        "rows": rows, "total_markets": page["total"],
        "headline": [
            {"key": "markets", "label": "管理的市场", "value": page["total"], "unit": "家"},
            {"key": "stalls", "label": "摊位", "value": total["stalls"], "unit": "个"},
            {"key": "stalls_claimed", "label": "已认领摊位", "value": total["claimed"], "unit": "个"},
            {"key": "pending_claims", "label": "待审认领", "value": total["pending_claims"], "unit": "件"},
            {"key": "pending_credentials", "label": "待审证照", "value": total["pending_credentials"], "unit": "件"},
            {"key": "pending_pledges", "label": "待审承诺", "value": total["pending_pledges"], "unit": "件"},
        ],
        "chart": {"bars": {"title": "各市场", "labels": [row["label"] for row in rows], "links": [row["url"] for row in rows],
                           "series": [{"key": key, "label": label, "values": [row["counts"][key] for row in rows]}
                                      for key, label in series]}},
    }


# -- branch secretaries ---------------------------------------------------------------------------
def secretary_dashboard(user) -> dict:
    """Each organisation a secretary runs: verified members, pending applications, this month's
    activities (the services of the API's member, membership and activity lists)."""
    from app.activities.queries import visible_activities
    from app.orgs.services import get_org, list_memberships
    from app.worklists.orgs import members

    first = local_today().replace(day=1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    rows = []
    for grant in user.grants:
        if grant.role != "branch_secretary" or grant.scope_type != "org" or not grant.scope_id.isdigit():
            continue
        try:
            org = get_org(int(grant.scope_id))
            rows.append({
                "name": org.name,
                "members": members(user, org.id, 1, 1)["total"],
                "pending": list_memberships(user, org, "pending", 1, 1)["total"],
                "activities": visible_activities(user, org.id, first, last, 1, 1)["total"],
            })
        except APIError:  # the organisation is gone: its grant shows in the scope list only
            continue
    return {"rows": rows, "headline": [
        {"key": "orgs", "label": "负责的组织", "value": len(rows), "unit": "个"},
        {"key": "members", "label": "已认定党员", "value": sum(row["members"] for row in rows), "unit": "名"},
        {"key": "pending", "label": "待审党员申请", "value": sum(row["pending"] for row in rows), "unit": "件"},
        {"key": "activities", "label": "本月活动", "value": sum(row["activities"] for row in rows), "unit": "次"},
    ]}
