"""GET /stats/trend?months=N: month by month (Asia/Shanghai calendar months, the current one up
to now), the figures a regulator reports as a series. Each month's value is the state at the
month's end (or now, for the current month):

- stalls_claimed: tenancies confirmed by then and not yet released (exact, from claim history);
- pledges_in_force: approved pledges whose term covers that moment and not revoked before it
  (exact);
- licences_shown: stalls whose current entity had a business licence verified by then and
  valid on that day (uses today's tenancies and verifications: a licence revoked since is not
  counted back in time);
- party_households: claimed stalls whose operator's membership was verified by then (today's
  verified memberships);
- activities and attendance_rate: activities held in the month (begun, not cancelled), and
  people checked in over people expected (today's members and riders).
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select

from app.core.regions import codes_under
from app.core.time import local_midnight_utc, local_today, utcnow
from app.credentials.models import LICENCE_KIND, Credential
from app.extensions import db
from app.markets.models import Market, Merchant, Stall, StallClaim
from app.orgs.models import Membership, PartyOrg
from app.pledges.models import Pledge
from app.stats.party import attendance, held_activities
from app.stats.services import resolve_region

MAX_MONTHS = 36


def _months(today: date, count: int) -> list[date]:
    """First days of the last `count` months, oldest first, ending with this month."""
    firsts, year, month = [], today.year, today.month
    for _ in range(count):
        firsts.append(date(year, month, 1))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return firsts[::-1]


def _next_month(first: date) -> date:
    return date(first.year + 1, 1, 1) if first.month == 12 else date(first.year, first.month + 1, 1)


def trend(actor, region_code: str | None, months: int, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    region = resolve_region(actor, region_code)
    in_markets = codes_under(Market.region_code, region["code"])
    in_orgs = codes_under(PartyOrg.region_code, region["code"])
    series = []
    for first in _months(local_today(now), months):
        start = local_midnight_utc(first)
        # The month's last instant (its end is the next month's first): its state, not April's.
        moment = min(local_midnight_utc(_next_month(first)) - timedelta(microseconds=1), now)
        day = local_today(moment) if moment == now else _last_day(first)
        series.append({"month": f"{first:%Y-%m}", "at": moment,
                       **_tenancy_figures(in_markets, moment, day),
                       "pledges_in_force": _pledges_in_force(in_markets, moment),
                       **_activity_figures(in_orgs, start, moment)})
    return {"region": region, "months": series, "generated_at": now}


def _last_day(first: date) -> date:
    return date.fromordinal(_next_month(first).toordinal() - 1)


def _held_at(moment: datetime):
    return and_(StallClaim.status.in_(("confirmed", "released")), StallClaim.reviewed_at <= moment,
                or_(StallClaim.released_at.is_(None), StallClaim.released_at > moment))


def _tenancy_figures(in_markets, moment: datetime, day: date) -> dict[str, int]:
    held = (select(StallClaim.stall_id, StallClaim.merchant_id).join(Stall, Stall.id == StallClaim.stall_id)
            .join(Market, Market.id == Stall.market_id).where(in_markets, _held_at(moment)).subquery())
    licensed = exists().where(
        Credential.merchant_id == held.c.merchant_id, Credential.kind == LICENCE_KIND, Credential.status == "verified",
        Credential.reviewed_at <= moment, or_(Credential.valid_from.is_(None), Credential.valid_from <= day),
        or_(Credential.long_term.is_(True), Credential.valid_until >= day))
    member_operated = (exists().where(Merchant.id == held.c.merchant_id, Membership.user_id == Merchant.owner_id,
                                      Membership.status == "verified", Membership.reviewed_at <= moment))
    claimed, shown, party = db.session.execute(select(
        func.count(), func.count().filter(licensed), func.count().filter(member_operated)).select_from(held)).one()
    return {"stalls_claimed": claimed, "licences_shown": shown, "party_households": party}


def _pledges_in_force(in_markets, moment: datetime) -> int:
    return db.session.scalar(
        select(func.count()).select_from(Pledge).join(Market, Market.id == Pledge.market_id).where(
            in_markets, Pledge.status.in_(("approved", "expired", "revoked")), Pledge.valid_from <= moment,
            Pledge.valid_until > moment, or_(Pledge.revoked_at.is_(None), Pledge.revoked_at > moment))) or 0


def _activity_figures(in_orgs, start: datetime, moment: datetime) -> dict[str, Any]:
    rows = attendance(held_activities(in_orgs, start, moment))
    expected = sum(row[2] for row in rows)
    present = sum(row[3] for row in rows)
    return {"activities": len(rows), "attendance_rate": round(present / expected, 4) if expected else None}
