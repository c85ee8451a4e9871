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
from app.stats import errors  # noqa: F401  (registers the codes)
from app.stats.party import party_building, party_households
from app.stats.queries import DISTINCT_SECTIONS, MARKET_SECTIONS, NATIONAL, RegionScope, markets_in

# Additive fields: a region's value is the sum of its markets'.
ADDITIVE_FIELDS = ("markets", "stalls", "stalls_claimed", "licences_shown", "permits_shown",
                   "pledges_in_force", "pledges_pending", "pledges_rejected", "pledges_revoked",
                   "pledges_expired", "party_households")
PER_MARKET = [*MARKET_SECTIONS, party_households]
# Distinct-entity fields: counted per row in SQL (an entity can hold stalls in two markets).
DISTINCT_FIELDS = ("merchants", "merchants_with_pledge_in_force")

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


def _zero() -> dict[str, int]:
    return {name: 0 for name in ADDITIVE_FIELDS + DISTINCT_FIELDS}


def _with_rate(totals: dict[str, Any]) -> dict[str, Any]:
    """Share of entities holding a stall whose pledge is in force (承诺率)."""
    merchants = totals["merchants"]
    totals["pledge_rate"] = round(totals["merchants_with_pledge_in_force"] / merchants, 4) if merchants else None
    return totals


def _add(into: dict[str, int], market_totals: dict[str, int]) -> None:
    for name in ADDITIVE_FIELDS:
        into[name] += market_totals[name]


def overview(actor, region_code: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """{"region": {code, name, level, totals}, "children": [{code, name, level, totals}],
    "direct": totals of markets registered at the region's own level (in no child),
    "markets": [{id, name, region_code, totals}], "sections": {...}, "generated_at"}.
    For additive fields region totals == sum(children) + direct == sum(markets)."""
    now = now or utcnow()
    region = resolve_region(actor, region_code)
    scope = RegionScope.of(region["code"])
    markets = markets_in(scope)
    market_ids = [market_id for market_id, _, _ in markets]

    per_market = {market_id: _zero() for market_id in market_ids}
    for section in PER_MARKET:
        for market_id, values in section(scope, market_ids, now).items():
            if market_id in per_market:
                per_market[market_id].update(values)
    for totals in per_market.values():
        totals["markets"] = 1

    children = child_regions(region["code"])
    buckets = {child.code: code_prefix(child.code) for child in children}
    rows: dict[Any, dict[str, int]] = {None: _zero(), "": _zero(), **{code: _zero() for code in buckets}}
    for market_id, _, market_region in markets:
        _add(rows[None], per_market[market_id])
        _add(rows[_bucket_of(market_region, buckets)], per_market[market_id])
    for section in DISTINCT_SECTIONS:
        for key, values in section(scope, buckets, now).items():
            rows.setdefault(key, _zero()).update(values)

    return {
        "region": {**region, "totals": _with_rate(rows[None])},
        "children": [{"code": child.code, "name": child.name, "level": child.level,
                      "totals": _with_rate(rows[child.code])} for child in children],
        "direct": _with_rate(rows[""]),
        "markets": [{"id": market_id, "name": name, "region_code": market_region,
                     "totals": _with_rate(per_market[market_id])}
                    for market_id, name, market_region in markets],
        "sections": {"party_building": party_building(region["code"], now, buckets)},
        "generated_at": now,
    }


def _bucket_of(market_region: str, buckets: dict[str, str]) -> str:
    """Same rule as queries.bucket_expr, for the additive roll-up of per-market rows."""
    for key, prefix in buckets.items():
        if market_region.startswith(prefix):
            return key
    return ""
