"""Aggregate SQL behind the coverage figures. Each section counts in the database (GROUP BY),
never by loading rows into Python:

- per-market sections: fn(scope, market_ids, now) -> {market_id: {field: n}}; their fields add
  up across markets, so regions are the sums of their markets.
- distinct sections: fn(scope, buckets, now) -> {bucket: {field: n}}; counts of distinct
  business entities, which do not add up (an entity may hold stalls in two markets), so they
  are counted per bucket (child region) in SQL.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from sqlalchemy import case, func, select

from app.extensions import db
from app.markets.models import Market, Stall
from app.core.regions import code_prefix, codes_under
from app.pledges.models import Pledge, expired_clause, in_force_clause

NATIONAL = "000000"


@dataclass(frozen=True)
class RegionScope:
    """Markets whose region code starts with `prefix` ("" = the whole country)."""

    code: str
    prefix: str

    @classmethod
    def of(cls, code: str) -> "RegionScope":
        return cls(code=code, prefix="" if code == NATIONAL else code_prefix(code))

    def markets_clause(self):
        return codes_under(Market.region_code, self.code)


def bucket_expr(buckets: dict[str, str]):
    """SQL: the child-region key of a market (its code's longest matching child prefix), ""
    for markets registered at the scope's own level."""
    whens = [(Market.region_code.like(prefix + "%"), key) for key, prefix in buckets.items()]
    return case(*whens, else_="")


def markets_in(scope: RegionScope) -> list[tuple[int, str, str]]:
    """(id, name, region_code) of every market in scope, by region then name."""
    return list(db.session.execute(
        select(Market.id, Market.name, Market.region_code).where(scope.markets_clause())
        .order_by(Market.region_code, Market.name, Market.id)))


# -- per-market sections -------------------------------------------------------------------------

def stall_counts(market_ids: list[int], now: datetime) -> dict[int, dict[str, int]]:
    rows = db.session.execute(
        select(Stall.market_id, func.count(Stall.id), func.count(Stall.merchant_id),
               func.count(Stall.merchant_id.distinct()))
        .where(Stall.market_id.in_(market_ids)).group_by(Stall.market_id))
    return {market_id: {"stalls": stalls, "stalls_claimed": claimed, "merchants": merchants}
            for market_id, stalls, claimed, merchants in rows}


def credential_counts(market_ids: list[int], now: datetime) -> dict[int, dict[str, int]]:
    # Looked up through the module so the credentials feature can change it without touching us.
    from app.credentials import queries as credential_queries

    return credential_queries.shown_counts_by_market(market_ids, now)


def _count_where(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def pledge_counts(market_ids: list[int], now: datetime) -> dict[int, dict[str, int]]:
    in_force = in_force_clause(now)
    rows = db.session.execute(
        select(Pledge.market_id,
               _count_where(in_force),
               _count_where(Pledge.status == "pending"),
               _count_where(Pledge.status == "rejected"),
               _count_where(Pledge.status == "revoked"),
               _count_where(expired_clause(now)),
               func.count(case((in_force, Pledge.merchant_id)).distinct()))
        .where(Pledge.market_id.in_(market_ids)).group_by(Pledge.market_id))
    return {row[0]: dict(zip(("pledges_in_force", "pledges_pending", "pledges_rejected",
                               "pledges_revoked", "pledges_expired",
                               "merchants_with_pledge_in_force"), map(int, row[1:])))
            for row in rows}


# -- distinct sections (per bucket) --------------------------------------------------------------

def merchants_by_bucket(scope: RegionScope, buckets: dict[str, str], now: datetime) -> dict:
    """Distinct entities holding a stall, and distinct entities with a pledge in force (the
    "6530 户" figure): key None for the whole scope, then one key per child region ("" for
    markets registered at the scope's own level)."""
    holders = Stall.merchant_id.distinct()
    pledgers = Pledge.merchant_id.distinct()

    def holding(*columns):
        return (select(*columns).join(Market, Market.id == Stall.market_id)
                .where(scope.markets_clause()))

    def pledged(*columns):
        return (select(*columns).join(Market, Market.id == Pledge.market_id)
                .where(scope.markets_clause(), in_force_clause(now)))

    result: dict = {None: {"merchants": db.session.scalar(holding(func.count(holders))),
                           "merchants_with_pledge_in_force": db.session.scalar(pledged(func.count(pledgers)))}}
    if not buckets:  # no child regions: every market is registered at the scope's own level
        result[""] = dict(result[None])
    else:
        bucket = bucket_expr(buckets)
        for key, n in db.session.execute(holding(bucket, func.count(holders)).group_by(bucket)):
            result.setdefault(key, {})["merchants"] = n
        for key, n in db.session.execute(pledged(bucket, func.count(pledgers)).group_by(bucket)):
            result.setdefault(key, {})["merchants_with_pledge_in_force"] = n
    return result


MarketSection = Callable[[list, datetime], dict]
DistinctSection = Callable[[RegionScope, dict, datetime], dict]

MARKET_SECTIONS: list[MarketSection] = [stall_counts, credential_counts, pledge_counts]
DISTINCT_SECTIONS: list[DistinctSection] = [merchants_by_bucket]
