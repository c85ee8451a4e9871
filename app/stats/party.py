"""The party-building figures of the overview (摸底数、抓覆盖): party-member households per
market (an additive field), and a region section for organisations, members, riders, care
stations, this month's activities and their attendance, for the region and each child region.

Organisations sit in regions, not markets: their counts are rolled up by each organisation's own
region code (app/stats/rollups.py), and the few things counted live here are bucketed into
child regions by the same prefix rule as markets."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, select

from app.activities.models import Activity, CareStation, CheckIn
from app.activities.queries import month_bounds
from app.core.regions import codes_under
from app.extensions import db
from app.markets.models import Merchant, Stall
from app.orgs.models import ORG_KINDS, Membership, PartyOrg, StationRider
from app.stats.models import OrgCoverage

MEMBER_OPERATED = exists().where(Membership.user_id == Merchant.owner_id, Membership.status == "verified")


def party_households(market_ids: list[int], now: datetime) -> dict[int, dict[str, int]]:
    """党员经营户: stalls held by an entity whose operator is a verified party member."""
    if not market_ids:
        return {}
    rows = db.session.execute(
        select(Stall.market_id, func.count(Stall.id)).join(Merchant, Merchant.id == Stall.merchant_id)
        .where(Stall.market_id.in_(market_ids), MEMBER_OPERATED).group_by(Stall.market_id))
    return {market_id: {"party_households": n} for market_id, n in rows}


def held_activities(in_orgs, start: datetime, until: datetime) -> list[tuple[int, int, str]]:
    """(id, org_id, audience) of the activities of organisations matching `in_orgs` that began in
    [start, until] and were not cancelled."""
    return db.session.execute(
        select(Activity.id, Activity.org_id, Activity.audience).join(PartyOrg, PartyOrg.id == Activity.org_id)
        .where(in_orgs, Activity.status != "cancelled", Activity.starts_at >= start,
               Activity.starts_at <= until)).all()


def attendance(held, members: dict[int, int] | None = None, riders: dict[int, int] | None = None):
    """(activity_id, org_id, expected, present) per activity: expected are the organisation's
    verified members, or its station's riders for a riders' activity; present, the people who
    checked in (at most the expected). Counts not given are read."""
    if not held:
        return []
    org_ids = {org_id for _, org_id, _ in held}
    if members is None:
        members = dict(db.session.execute(select(Membership.org_id, func.count()).where(
            Membership.org_id.in_(org_ids), Membership.status == "verified").group_by(Membership.org_id)).all())
    if riders is None:
        riders = dict(db.session.execute(select(StationRider.org_id, func.count(StationRider.user_id.distinct()))
                                         .where(StationRider.org_id.in_(org_ids)).group_by(StationRider.org_id)).all())
    present = dict(db.session.execute(select(CheckIn.activity_id, func.count(CheckIn.user_id.distinct())).where(
        CheckIn.activity_id.in_([a for a, _, _ in held])).group_by(CheckIn.activity_id)).all())
    rows = []
    for activity_id, org_id, audience in held:
        expected = riders.get(org_id, 0) if audience == "station_riders" else members.get(org_id, 0)
        rows.append((activity_id, org_id, expected, min(present.get(activity_id, 0), expected)))
    return rows


def _figures(totals: dict[str, int]) -> dict[str, Any]:
    """The section's figures of one row, from the roll-up's party columns."""
    return {"orgs": totals["orgs"], "orgs_by_kind": {kind: totals[f"orgs_{kind}"] for kind in ORG_KINDS},
            "members_verified": totals["members_verified"], "members_floating": totals["members_floating"],
            "rider_stations": totals["rider_stations"], "riders": totals["riders"], "care_stations": 0,
            "activities_this_month": 0, "attendance_expected": 0, "attendance_present": 0}


def party_building(region_code: str, now: datetime, rows: dict[str, dict[str, int]],
                   children: dict[str, str], direct: str) -> dict[str, Any]:
    """{"totals", "children": {child_code: {...}}, "direct"} for the region (000000: the country).

    Organisations, members and riders come from the roll-ups (`rows`: scope -> totals, as read
    by app.stats.rollups.scope_totals for the region, its children and `direct`); open care
    stations and this month's activities are few and counted here. attendance_rate = people
    checked in / people expected (the organisation's verified members, or its station's
    riders), over this month's activities that have begun and were not cancelled."""
    figures = {key: _figures(rows[key]) for key in (region_code, direct, *children)}
    keys = {None: region_code, "": direct if children else region_code, **{child: child for child in children}}

    def bucket(code: str) -> str:
        return next((child for child, child_prefix in children.items() if code.startswith(child_prefix)), "")

    def add(code: str, field: str, n: int) -> None:
        for key in {keys[None], keys[bucket(code)]}:
            figures[key][field] += n

    for code, n in db.session.execute(select(CareStation.region_code, func.count())
                                      .where(codes_under(CareStation.region_code, region_code),
                                             CareStation.closed_at.is_(None)).group_by(CareStation.region_code)):
        add(code, "care_stations", n)
    start, end = month_bounds(now)
    held = held_activities(codes_under(PartyOrg.region_code, region_code), start, min(end, now))
    if held:
        org_ids = {org_id for _, org_id, _ in held}
        counted = db.session.execute(select(OrgCoverage.org_id, OrgCoverage.region_code, OrgCoverage.members_verified,
                                            OrgCoverage.riders).where(OrgCoverage.org_id.in_(org_ids))).all()
        region_of = {org_id: code for org_id, code, _, _ in counted}
        members = {org_id: n for org_id, _, n, _ in counted}
        riders = {org_id: n for org_id, _, _, n in counted}
        for _, org_id, expected, present in attendance(held, members, riders):
            code = region_of.get(org_id, "")
            add(code, "activities_this_month", 1)
            add(code, "attendance_expected", expected)
            add(code, "attendance_present", present)

    def finished(values: dict[str, Any]) -> dict[str, Any]:
        expected = values["attendance_expected"]
        return {**values, "attendance_rate": round(values["attendance_present"] / expected, 4) if expected else None}

    return {"totals": finished(figures[keys[None]]),
            "children": {child: finished(figures[child]) for child in children},
            "direct": finished(figures[keys[""]])}
