"""Coverage figures for regulators (覆盖情况): per market, per child region and for the region,
e.g. "带动 163 家专业市场的 6530 户个体工商户参与诚信经营承诺".

The overview is composed of sections: per-market sections and distinct-entity sections
(app/stats/queries.py, app/stats/party.py) fill the `totals` of every row; the party-building
section (organisations, members, riders, care stations, activities and attendance) is counted
by region, for the region and each child region, under `sections.party_building`."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from app.identity.auth import Target, authorize, scopes_of
from app.core.errors import APIError
from app.core.time import utcnow
from app.extensions import db
from app.core.regions import Region, code_prefix
from app.stats import errors, rollups  # noqa: F401  (errors registers the codes)
from app.reports.queries import report_figures
from app.stats.party import party_building
from app.stats.queries import NATIONAL, RegionScope

MARKETS_PER_PAGE = 100  # per-market rows of one overview page (a province has ~20,000)
MAX_MARKETS_PER_PAGE = 500

def default_region(actor) -> str:
    """The caller's own region: the country for administrators, the single region of a
    regulator; a regulator of several regions must say which."""
    grants = scopes_of(actor, "regulator")
    if any(grant.role == "admin" for grant in grants):
        return NATIONAL
    regions = sorted({grant.scope_id for grant in grants if grant.scope_type == "region"})
    if len(regions) != 1:
        raise APIError(code="STATS_REGION_REQUIRED", details={"regions": regions})
    return regions[0]


def resolve_region(actor, region_code: str | None) -> dict[str, Any]:
    code = region_code or default_region(actor)
    if code == NATIONAL:
        authorize(actor, ["regulator"], Target(region_code=None))
        return {"code": NATIONAL, "name": "全国", "level": 0}
    region = db.session.get(Region, code)
    if region is None:
        raise APIError(code="REGION_NOT_FOUND", details={"region_code": code})
    authorize(actor, ["regulator"], Target(region_code=region.code))
    return {"code": region.code, "name": region.name, "level": region.level}


def child_regions(code: str) -> list[Region]:
    parent = Region.parent_code.is_(None) if code == NATIONAL else Region.parent_code == code
    return list(db.session.scalars(select(Region).where(parent).order_by(Region.code)))


def _with_rate(totals: dict[str, Any]) -> dict[str, Any]:
    """Share of entities holding a stall whose pledge is in force (承诺率)."""
    totals = dict(totals)
    merchants = totals["merchants"]
    totals["pledge_rate"] = round(totals["merchants_with_pledge_in_force"] / merchants, 4) if merchants else None
    return totals


def overview(actor, region_code: str | None = None, now: datetime | None = None,
             page: int = 1, per_page: int | None = MARKETS_PER_PAGE) -> dict[str, Any]:
    """{"region": {code, name, level, totals}, "children": [{code, name, level, totals}],
    "direct": totals of markets registered at the region's own level (in no child),
    "markets": one page of [{id, name, region_code, totals}] (every market when per_page is
    None), "markets_page": {page, per_page, total}, "sections": {...}, "generated_at"}.

    Read from the roll-ups (app/stats/rollups.py), exact at `generated_at`; for additive fields
    region totals == sum(children) + direct == sum(markets over all pages)."""
    now = now or utcnow()
    region = resolve_region(actor, region_code)
    session = db.session()
    if not rollups.is_built(session):
        raise APIError(code="STATS_ROLLUPS_MISSING")
    scope = RegionScope.of(region["code"])
    children = child_regions(region["code"])
    direct = rollups.direct_scope(region["code"])
    totals = rollups.scope_totals(session, [region["code"], direct, *(c.code for c in children)], region["code"], now)
    if per_page is None:
        rows, total = rollups.market_rows(session, scope.markets_clause(), 1, 10 ** 9, now)
    else:
        rows, total = rollups.market_rows(session, scope.markets_clause(), page, per_page, now)
    return {
        "region": {**region, "totals": _with_rate(totals[region["code"]])},
        "children": [{"code": child.code, "name": child.name, "level": child.level,
                      "totals": _with_rate(totals[child.code])} for child in children],
        "direct": _with_rate(totals[direct] if children else totals[region["code"]]),
        "markets": [{"id": market_id, "name": name, "region_code": code, "totals": _with_rate(values)}
                    for market_id, name, code, values in rows],
        "markets_page": {"page": 1 if per_page is None else page, "per_page": per_page or total, "total": total},
        "sections": {"party_building": party_building(
            region["code"], now, totals, {child.code: code_prefix(child.code) for child in children}, direct),
            "rider_reports": report_figures(region["code"], now)},
        "generated_at": now,
    }
