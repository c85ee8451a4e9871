"""首页: the dashboard of the caller's scope, through the same services as the API.

- Regulators and admins: the coverage of a region (app.stats.services.overview, the roll-ups)
  and its monthly trend (app.stats.trend.trend): headline numbers, a trend chart, a bar chart by
  child region (or by market at county level, paged), drill-down by `?region=`, a breadcrumb
  back up. The services check the region: a regulator asking outside their region gets the
  service's Chinese refusal on the page, not a 500.
  Under them the rider reports (骑手随手拍) of the same region, from the overview's
  `sections.rider_reports` (app.reports.queries.report_figures): counts by status, category,
  month and child region, overdue, upheld rate, hours to close; at city and county level a grid
  heat map of app.reports.queries.heatmap's aggregated cells (never single reports).
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
from app.core.regions import Region, parent_of, region_covers
from app.core.time import local_today, to_local
from app.extensions import db
from app.identity.auth import Target, grant_covers, has_role, scopes_of
from app.stats.queries import NATIONAL

TREND_MONTHS = 12
MARKETS_PER_PAGE = 20  # market rows (and bars) of a county's dashboard page
# The trend's series, in the chart's order, with their Chinese names.
TREND_SERIES = (("stalls_claimed", "已认领摊位"), ("licences_shown", "亮照摊位"),
                ("pledges_in_force", "生效承诺"), ("party_households", "党员经营户"))
# The bars of a child region or a market.
BAR_SERIES = (("stalls", "摊位"), ("stalls_claimed", "已认领"), ("licences_shown", "亮照"),
              ("pledges_in_force", "生效承诺"))
# The heat map at city (2) and county (3) level: a province's or the country's cells would be
# specks, and their list long.
HEATMAP_LEVELS = (2, 3)
# What each report status means, for the status bar's tooltips (the labels are the API's).
STATUS_HINTS = {"open": "已提交，尚未受理", "accepted": "已受理，尚未认定", "upheld": "认定属实，尚未整改",
                "unfounded": "认定不属实，已办结", "rectified": "属实并已整改，已办结"}


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
    reports = _reports_of(region, data["sections"]["rider_reports"], [month["month"] for month in months],
                          [] if by_market else rows)
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
            "reports": reports["chart"],
        },
        "trend_rows": months,
        "reports": reports,
    }


def _reports_of(region: dict, figures: dict, months: list[str], children: list[dict]) -> dict:
    """The 骑手随手拍 panel of the region the overview resolved (so in the regulator's scope)."""
    from app.reports.queries import heatmap

    heat = heatmap(region["code"]) if region["level"] in HEATMAP_LEVELS and figures["total"] else None
    queue_url = url_for("console.report_queue") if has_role(g.console_user, "regulator") else None
    return {**reports_panel(figures, months, children, heat), "queue_url": queue_url}


def reports_panel(figures: dict, months: list[str], children: list[dict], heat: dict | None) -> dict:
    """What the panel shows of report_figures (and heatmap's cells when given): status shares,
    headline numbers, categories (most reported first), the months of the trend, child regions."""
    from app.reports.models import REPORT_STATUSES

    total = figures["total"]
    statuses = [{"key": key, "label": label, "count": figures["by_status"][key], "hint": STATUS_HINTS[key],
                 "share": round(figures["by_status"][key] * 100 / total, 2) if total else 0}
                for key, label in REPORT_STATUSES.items()]
    categories = sorted(figures["by_category"], key=lambda row: (-row["count"], row["label"]))
    per_month = {row["month"]: row["count"] for row in figures["by_month"]}
    month_rows = [{"month": month, "count": per_month.get(month, 0)} for month in months]
    return {
        "total": total, "statuses": statuses, "headline": report_headline(figures),
        "categories": categories, "months": month_rows, "earlier": total - sum(row["count"] for row in month_rows),
        "regions": _reports_by_child(figures["by_region"], children) if children else None,
        "heat": _heat_view(heat) if heat is not None else None,
        "chart": {"categories": {"labels": [row["label"] for row in categories],
                                 "values": [row["count"] for row in categories]},
                  "months": {"labels": months, "values": [row["count"] for row in month_rows]},
                  "heat": ({"cell_degrees": heat["cell_degrees"], "cells": heat["cells"]}
                           if heat is not None and heat["cells"] else None)},
    }


def report_headline(figures: dict) -> list[dict]:
    rate = figures["upheld_rate"]
    return [
        {"key": "reports_total", "label": "举报总数", "value": figures["total"], "unit": "件"},
        {"key": "reports_overdue", "label": "超期未办", "value": figures["overdue"], "unit": "件",
         "alert": figures["overdue"] > 0, "hint": "超过 1 个工作日未受理，或超过 7 天未认定"},
        {"key": "reports_closed", "label": "已办结", "value": figures["closed"], "unit": "件",
         "hint": "认定属实或不属实的举报（含已整改）"},
        {"key": "reports_upheld_rate", "label": "属实率", "value": None if rate is None else f"{rate * 100:.1f}",
         "unit": "%" if rate is not None else "", "hint": "属实（含已整改）/ 已办结"},
        {"key": "reports_hours_avg", "label": "平均办结用时", "value": figures["close_hours_avg"],
         "unit": "小时" if figures["close_hours_avg"] is not None else "", "hint": "从提交到认定属实或不属实"},
        {"key": "reports_hours_median", "label": "办结用时中位数", "value": figures["close_hours_median"],
         "unit": "小时" if figures["close_hours_median"] is not None else "", "hint": "一半的举报在此时间内办结"},
    ]


def _reports_by_child(by_region: list[dict], children: list[dict]) -> list[dict]:
    """Reports per child region of the dashboard (the figures count them per county), then those
    filed at the region's own level, if any."""
    rows = [{"label": child["label"], "url": child["url"], "count": 0} for child in children]
    own = 0
    for entry in by_region:
        index = next((i for i, child in enumerate(children) if region_covers(child["code"], entry["code"])), None)
        if index is None:
            own += entry["count"]
        else:
            rows[index]["count"] += entry["count"]
    if own:
        rows.append({"label": "本级", "url": None, "count": own})
    return rows


def _heat_view(heat: dict) -> dict:
    """The cells for the table (most reports first) and the legend's range."""
    cells = sorted(heat["cells"], key=lambda cell: (-cell["count"], -cell["lat"], cell["lng"]))
    return {"cells": cells, "suppressed": heat["suppressed"], "min_count": heat["min_count"],
            "max_count": cells[0]["count"] if cells else None}


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
