"""Markets: the ones a regulator or manager covers (with their counts), and the stall-claim
queue of a market (oldest pending first). Paged; rows name people and entities, not ids."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import exists, false, func, or_, select, true

from app.core.pagination import paginate
from app.core.regions import Region, code_prefix
from app.core.errors import APIError
from app.extensions import db
from app.identity import people
from app.badge.models import StallBadge
from app.core.time import local_midnight_utc, local_today, utcnow
from app.credentials.models import Credential
from app.markets.models import Market, Merchant, Stall, StallClaim
from app.pledges.models import Pledge, in_force_clause
from app.markets.services import list_stalls, manage_market

CLAIM_STATUSES = ("pending", "confirmed", "rejected", "released")


def markets_covered(actor):
    """SQL condition: markets `actor` covers as a regulator (by region), a manager (by market)
    or an admin (all)."""
    conditions = []
    for grant in actor.grants:
        if grant.role == "admin":
            return true()
        if grant.role == "regulator" and grant.scope_type == "region":
            conditions.append(Market.region_code.like(code_prefix(grant.scope_id) + "%"))
        elif grant.role == "market_manager" and grant.scope_type == "market" and grant.scope_id.isdigit():
            conditions.append(Market.id == int(grant.scope_id))
    return or_(*conditions) if conditions else false()


def list_markets(actor, region: str | None, q: str | None, page: int, per_page: int) -> dict:
    """GET /markets: in the caller's scope, optionally within a region and by name, with the
    counts a regulator scans first (stalls, claimed, waiting for review)."""
    stmt = select(Market).where(markets_covered(actor))
    if region:
        if db.session.get(Region, region) is None:
            raise APIError(code="REGION_NOT_FOUND", details={"region": region})
        stmt = stmt.where(Market.region_code.like(code_prefix(region) + "%"))
    if q:
        stmt = stmt.where(Market.name.contains(q, autoescape=True))
    result = paginate(stmt.order_by(Market.region_code, Market.name, Market.id), page, per_page)
    counts = market_counts([market.id for market in result["items"]])
    for market in result["items"]:
        market.counts = counts[market.id]  # answered with the row, not stored
    return result


def market_counts(market_ids: list[int]) -> dict[int, dict[str, int]]:
    counts = {market_id: {"stalls": 0, "claimed": 0, "pending_claims": 0, "pending_credentials": 0,
                          "pending_pledges": 0} for market_id in market_ids}
    if not market_ids:
        return counts
    for market_id, stalls, claimed in db.session.execute(
            select(Stall.market_id, func.count(), func.count(Stall.merchant_id))
            .where(Stall.market_id.in_(market_ids)).group_by(Stall.market_id)):
        counts[market_id].update(stalls=stalls, claimed=claimed)
    for market_id, pending in db.session.execute(
            select(Stall.market_id, func.count()).join(StallClaim, StallClaim.stall_id == Stall.id)
            .where(Stall.market_id.in_(market_ids), StallClaim.status == "pending").group_by(Stall.market_id)):
        counts[market_id]["pending_claims"] = pending
    for market_id, pending in db.session.execute(
            select(Stall.market_id, func.count(func.distinct(Credential.id)))
            .join(Credential, Credential.merchant_id == Stall.merchant_id)
            .where(Stall.market_id.in_(market_ids), Credential.status == "pending").group_by(Stall.market_id)):
        counts[market_id]["pending_credentials"] = pending
    for market_id, pending in db.session.execute(
            select(Pledge.market_id, func.count()).where(Pledge.market_id.in_(market_ids), Pledge.status == "pending")
            .group_by(Pledge.market_id)):
        counts[market_id]["pending_pledges"] = pending
    return counts


def claim_queue(actor, market_id: int, status: str | None, page: int, per_page: int) -> dict:
    """GET /markets/{id}/claims: claims on this market's stalls; pending ones oldest first (the
    queue), decided ones newest first."""
    market, _ = manage_market(actor, market_id)
    stmt = (select(StallClaim, Stall, Merchant).join(Stall, Stall.id == StallClaim.stall_id)
            .join(Merchant, Merchant.id == StallClaim.merchant_id).where(Stall.market_id == market.id))
    status = status or "pending"
    stmt = stmt.where(StallClaim.status == status)
    order = (StallClaim.created_at, StallClaim.id) if status == "pending" else (
        StallClaim.created_at.desc(), StallClaim.id.desc())
    result = paginate(stmt.order_by(*order), page, per_page, scalars=False)
    people.preload(claim.requested_by_id for claim, _, _ in result["items"])
    result["items"] = [{
        "id": claim.id, "status": claim.status, "created_at": claim.created_at,
        "stall": {"id": stall.id, "number": stall.number, "token": stall.token},
        "merchant": {"id": merchant.id, "name": merchant.name, "kind": merchant.kind, "uscc": merchant.uscc,
                     "operator_name": merchant.operator_name},
        "requested_by_id": claim.requested_by_id, "review_reason": claim.review_reason,
        "reviewed_at": claim.reviewed_at,
    } for claim, stall, merchant in result["items"]]
    return result




def credential_queue(actor, market_id: int, status: str | None, page: int, per_page: int) -> dict:
    """GET /markets/{id}/credentials: documents of the entities holding (or claiming) a stall in
    this market; pending ones oldest first, with the photo link, the entity and its stalls here."""
    market, _ = manage_market(actor, market_id)
    holders = select(Stall.merchant_id).where(Stall.market_id == market.id, Stall.merchant_id.is_not(None))
    claimants = (select(StallClaim.merchant_id).join(Stall, Stall.id == StallClaim.stall_id)
                 .where(Stall.market_id == market.id, StallClaim.status == "pending"))
    status = status or "pending"
    stmt = (select(Credential, Merchant).join(Merchant, Merchant.id == Credential.merchant_id)
            .where(Credential.merchant_id.in_(holders.union(claimants)), Credential.status == status))
    order = (Credential.created_at, Credential.id) if status == "pending" else (
        Credential.created_at.desc(), Credential.id.desc())
    result = paginate(stmt.order_by(*order), page, per_page, scalars=False)
    merchant_ids = {merchant.id for _, merchant in result["items"]}
    numbers: dict[int, list[str]] = {}
    for merchant_id, number in db.session.execute(
            select(Stall.merchant_id, Stall.number).where(Stall.market_id == market.id,
                                                          Stall.merchant_id.in_(merchant_ids)).order_by(Stall.number)):
        numbers.setdefault(merchant_id, []).append(number)
    people.preload(credential.submitted_by_id for credential, _ in result["items"])
    items = []
    for credential, merchant in result["items"]:
        credential.merchant_ref = {"id": merchant.id, "name": merchant.name, "stall_numbers": numbers.get(merchant.id, [])}
        items.append(credential)
    result["items"] = items
    return result


def stall_list(actor, market_id: int, filters: dict, page: int, per_page: int) -> dict:
    """GET /markets/{id}/stalls with filters: claimed (true/false), verdict (good / partial /
    none, as the public badge shows it now), not_shown (anything but good), expiring_within (days: the entity's verified
    document, or its pledge in force, ends within them)."""
    conditions = []
    if filters.get("claimed") is not None:
        conditions.append(Stall.merchant_id.is_not(None) if filters["claimed"] else Stall.merchant_id.is_(None))
    if filters.get("verdict"):
        conditions.append(exists().where(StallBadge.stall_id == Stall.id,
                                         StallBadge.verdict_level == filters["verdict"]))
    if filters.get("not_shown"):  # the badge is not 放心摊位 (the console's 未完整公示 filter)
        conditions.append(~exists().where(StallBadge.stall_id == Stall.id, StallBadge.verdict_level == "good"))
    if filters.get("expiring_within") is not None:
        now = utcnow()
        today = local_today(now)
        until = today + timedelta(days=filters["expiring_within"])
        document = exists().where(Credential.merchant_id == Stall.merchant_id, Credential.status == "verified",
                                  Credential.long_term.is_(False), Credential.valid_until >= today,
                                  Credential.valid_until <= until)
        pledge = exists().where(Pledge.merchant_id == Stall.merchant_id, in_force_clause(now),
                                Pledge.valid_until <= local_midnight_utc(until + timedelta(days=1)))
        conditions.append(or_(document, pledge))
    return list_stalls(actor, market_id, page, per_page, conditions)
