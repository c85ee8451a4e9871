"""Party organisations: creation in a regulator's region or under a secretary's organisation,
membership claims and their review, riders joining a station."""
from __future__ import annotations

from sqlalchemy import select

from app.core.review import decide, decision_reason
from app.core import audit
from app.core.auth import Target, authorize
from app.core.db import get_or_404, insert_ignore
from app.core.errors import APIError, Conflict, NotFound
from app.core.time import utcnow
from app.extensions import db
from app.markets import badge_cache
from app.markets.models import Market
from app.markets.regions import Region, region_covers
from app.orgs import errors  # noqa: F401  registers the codes
from app.orgs.models import Membership, PartyOrg, StationRider

# Roles that run an organisation's business (schedule activities, read attendance).
ORGANISER_ROLES = ("branch_secretary", "market_manager", "regulator")
# Roles that decide who is a member.
MEMBERSHIP_REVIEWER_ROLES = ("branch_secretary", "regulator")
MAX_DEPTH = 12  # deeper than any real party hierarchy; stops a bad row from looping forever


def get_org(org_id: int) -> PartyOrg:
    return get_or_404(PartyOrg, org_id, "ORG_NOT_FOUND")


def ancestry(org: PartyOrg) -> tuple[int, ...]:
    """The organisation's id and its ancestors' ids, nearest first (a committee's secretary
    covers every branch below it)."""
    ids = [org.id]
    parent_id = org.parent_id
    while parent_id is not None and parent_id not in ids and len(ids) < MAX_DEPTH:
        ids.append(parent_id)
        parent_id = db.session.scalar(select(PartyOrg.parent_id).where(PartyOrg.id == parent_id))
    return tuple(ids)


def org_target(org: PartyOrg) -> Target:
    return Target(region_code=org.region_code, market_id=org.market_id, org_ids=ancestry(org))


def authorize_organiser(actor, org: PartyOrg) -> str:
    return authorize(actor, ORGANISER_ROLES, org_target(org))


def create_org(actor, data: dict) -> PartyOrg:
    region = db.session.get(Region, data["region_code"])
    if region is None:
        raise APIError(code="REGION_NOT_FOUND", details={"region_code": data["region_code"]})
    parent = None
    if data.get("parent_id") is not None:
        parent = db.session.get(PartyOrg, data["parent_id"])
        if parent is None:
            raise NotFound(code="ORG_PARENT_NOT_FOUND")
    # A regulator acts in their region; a secretary only under an organisation they lead.
    target = Target(region_code=region.code, org_ids=ancestry(parent) if parent else ())
    role = authorize(actor, ["regulator", "branch_secretary"], target)
    if parent is not None and not region_covers(parent.region_code, region.code):
        raise APIError(code="ORG_REGION_MISMATCH", details={"parent_region_code": parent.region_code})
    if data.get("market_id") is not None:
        market = db.session.get(Market, data["market_id"])
        if market is None:
            raise NotFound(code="ORG_MARKET_NOT_FOUND")
        if not region_covers(region.code, market.region_code):
            raise APIError(code="ORG_REGION_MISMATCH", details={"market_region_code": market.region_code})
    org = PartyOrg(created_by_id=actor.id, **data)
    db.session.add(org)
    db.session.flush()
    audit.record("org.create", "party_org", org.id, actor=actor, actor_role=role,
                 after={"name": org.name, "kind": org.kind, "sector": org.sector,
                        "region_code": org.region_code, "parent_id": org.parent_id})
    return org


def claim_membership(user, org: PartyOrg, data: dict) -> Membership:
    """A user states they are a member of `org`; the secretary verifies it. A rejected claim
    may be made again (it goes back to pending)."""
    if data.get("floating") and not (data.get("home_org_name") or "").strip():
        raise APIError(code="HOME_ORG_REQUIRED")
    membership = db.session.scalar(select(Membership).where(
        Membership.org_id == org.id, Membership.user_id == user.id))
    fields = {"standing": data["standing"], "floating": bool(data.get("floating")),
              "home_org_name": (data.get("home_org_name") or None) if data.get("floating") else None}
    if membership is None:
        inserted = insert_ignore(Membership, {
            "org_id": org.id, "user_id": user.id, "status": "pending",
            "created_at": utcnow(), "updated_at": utcnow(), **fields,
        }, ["org_id", "user_id"])
        if not inserted:
            raise Conflict(code="MEMBERSHIP_EXISTS")
        return db.session.scalar(select(Membership).where(
            Membership.org_id == org.id, Membership.user_id == user.id))
    if membership.status != "rejected":
        raise Conflict(code="MEMBERSHIP_EXISTS", details={"membership_id": membership.id,
                                                          "status": membership.status})
    for key, value in fields.items():
        setattr(membership, key, value)
    membership.status = "pending"
    membership.reviewed_by_id = None
    membership.reviewed_at = None
    db.session.flush()
    return membership


def get_membership(membership_id: int) -> Membership:
    return get_or_404(Membership, membership_id, "MEMBERSHIP_NOT_FOUND")


def review_membership(actor, membership_id: int, decision: str, reason: str | None) -> Membership:
    """Verify or reject a pending claim. Audited; the member's stalls' badges follow at once.
    A decided claim is not reviewed again: a verified member who leaves (a transfer) is revoked
    (`revoke_membership`), so two reviewers of one pending claim cannot both win."""
    new_status = "verified" if decision == "approve" else "rejected"
    return _decide_membership(actor, membership_id, "pending", new_status, f"membership.{decision}",
                              decision_reason(decision, reason))


def revoke_membership(actor, membership_id: int, reason: str | None) -> Membership:
    """Take a verified member's standing off (transferred out, ceased to be a member)."""
    return _decide_membership(actor, membership_id, "verified", "rejected", "membership.revoke",
                              decision_reason("revoke", reason, required=True))


def _decide_membership(actor, membership_id: int, expected: str, new_status: str, action: str,
                       reason: str | None) -> Membership:
    membership = get_membership(membership_id)
    org = get_org(membership.org_id)
    role = authorize(actor, MEMBERSHIP_REVIEWER_ROLES, org_target(org))
    before = {"status": membership.status}
    decide(membership, actor, expected, new_status, reason, "MEMBERSHIP_ALREADY_DECIDED")
    if expected == "verified" or membership.verified:
        badge_cache.invalidate_owner(membership.user_id)
    audit.record(action, "membership", membership.id, actor=actor, actor_role=role, before=before,
                 after={"status": new_status, "org_id": org.id, "user_id": membership.user_id},
                 reason=reason)
    return membership


def list_memberships(actor, org: PartyOrg, status: str | None, page: int, per_page: int) -> dict:
    from app.core.pagination import paginate

    authorize(actor, MEMBERSHIP_REVIEWER_ROLES + ("market_manager",), org_target(org))
    stmt = select(Membership).where(Membership.org_id == org.id)
    if status:
        stmt = stmt.where(Membership.status == status)
    return paginate(stmt.order_by(Membership.id), page, per_page)


def join_station(user, org: PartyOrg) -> tuple[StationRider, bool]:
    """A rider joins the audience of a rider organisation's station (open rider activities).
    Returns the record and whether it is new."""
    from app.identity.services import ensure_self_service_role

    if org.sector != "rider":
        raise APIError(code="ORG_NOT_RIDER_STATION")
    ensure_self_service_role(user, "rider")
    inserted = insert_ignore(StationRider, {"org_id": org.id, "user_id": user.id, "joined_at": utcnow()},
                             ["org_id", "user_id"])
    record = db.session.scalar(select(StationRider).where(
        StationRider.org_id == org.id, StationRider.user_id == user.id))
    return record, bool(inserted)
