"""The reminders engine: features declare their reminder series next to their own models
(`app/<feature>/reminders.py`, with `@reminder_series`); the engine collects them, and keeps
the outbox, consents, dispatch, the leader lock and the scheduler.

A series is a function `run(now) -> counts` plus when it runs. Sweeps are set-based: one query
finds what is due (on indexed columns), the rows are computed from it and inserted in batches
with ON CONFLICT DO NOTHING on the dedupe key (user, kind, subject, period), so a rerun, a
catch-up after downtime or a second scheduler adds nothing already there. Stages are buckets
("7 days or fewer left"), not exact days, so a day the scheduler missed is caught up."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from sqlalchemy import String, and_, cast, select

# Modules that declare series. Imported without a safety net: a wrong path fails at start.
FEATURE_SERIES = (
    "app.markets.reminders", "app.credentials.reminders", "app.pledges.reminders",
    "app.activities.reminders", "app.stats.reminders", "app.reports.reminders", "app.reminders.upkeep",
)


@dataclass(frozen=True)
class Daily:
    """Once a day at a configured local time (a setting like REMINDERS_DAILY_AT), plus an
    offset in minutes so series of the same hour do not start together."""
    setting: str
    offset_minutes: int = 0


@dataclass(frozen=True)
class Every:
    minutes: int


@dataclass(frozen=True)
class Series:
    name: str
    run: Callable[[datetime], dict]
    when: Daily | Every
    grace_seconds: int
    description: str


_series: dict[str, Series] = {}


def reminder_series(name: str, *, when: Daily | Every, grace_seconds: int, description: str):
    """Declare a series (decorates its `run(now)`)."""

    def register(run: Callable[[datetime], dict]) -> Callable[[datetime], dict]:
        existing = _series.get(name)
        if existing is not None and existing.run is not run:
            raise ValueError(f"reminder series {name!r} declared twice")
        _series[name] = Series(name, run, when, grace_seconds, description)
        return run

    return register


def _declared_order(module: str) -> int:
    """Position of a declaring module in FEATURE_SERIES: the order of schedules and digests
    must not depend on which module some other import happened to load first."""
    return FEATURE_SERIES.index(module) if module in FEATURE_SERIES else len(FEATURE_SERIES)


def all_series() -> dict[str, Series]:
    """Every declared series, in FEATURE_SERIES order (then declaration order)."""
    for path in FEATURE_SERIES:
        importlib.import_module(path)
    ordered = sorted(_series.items(), key=lambda item: _declared_order(item[1].run.__module__))
    return dict(ordered)


# -- helpers the features' series share --------------------------------------------------------

def stage_of(left, stages) -> str:
    """The first (limit, stage) whose limit `left` is within: which reminder of a series is due."""
    for limit, stage in stages:
        if left <= limit:
            return stage
    raise ValueError(left)


def managers_of_markets():
    """(user_id, market_key) of every active market-manager grant."""
    from app.identity.models import RoleGrant

    return (select(RoleGrant.user_id, RoleGrant.scope_id.label("market_key"))
            .where(RoleGrant.role == "market_manager", RoleGrant.scope_type == "market",
                   RoleGrant.revoked_at.is_(None)))


def secretaries_of(org_id_column):
    """Join condition: active branch-secretary grants of the organisation in `org_id_column`."""
    from app.identity.models import RoleGrant

    return and_(RoleGrant.role == "branch_secretary", RoleGrant.scope_type == "org",
                RoleGrant.scope_id == cast(org_id_column, String), RoleGrant.revoked_at.is_(None))


# -- pending reviews, counted by the features for the managers' daily digest ---------------------

@dataclass(frozen=True)
class PendingReviews:
    key: str
    label: str  # as the digest says it: 摊位认领
    short: str  # in a subscribe message's 20 characters: 认领
    count_by_market: Callable[[], list[tuple[int, int]]]


_pending: dict[str, PendingReviews] = {}


def pending_reviews(key: str, label: str, short: str):
    """Declare a kind of review a market manager has waiting (decorates `() -> [(market_id, n)]`)."""

    def register(count_by_market):
        _pending[key] = PendingReviews(key, label, short, count_by_market)
        return count_by_market

    return register


def all_pending_reviews() -> list[PendingReviews]:
    all_series()  # the declaring modules are the series modules
    return sorted(_pending.values(), key=lambda kind: _declared_order(kind.count_by_market.__module__))
