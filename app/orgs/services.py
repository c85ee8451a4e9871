"""Party organisations: creation in a regulator's region or under a secretary's organisation,
membership claims and their review, riders joining a station."""
from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from app.badge import cache as badge_cache
from app.core.review import compare_and_set, decide, decision_reason
from app.core import audit
from app.identity.auth import Target, authorize, register_scope_target
from app.core.db import get_or_404, insert_ignore
from app.core.errors import APIError, Conflict, NotFound
from app.core.ids import typed_int
from app.core.time import utcnow
from app.extensions import db
from app.markets.models import Market
from app.core.regions import Region, region_covers
from app.orgs import errors  # noqa: F401  registers the codes
from app.identity.people import with_people
from app.reminders import notices
from app.orgs.models import Membership, PartyOrg, StationJoinRequest, StationRider

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


def _org_scope(org_id: str) -> Target | None:
    number = typed_int(org_id)
    org = db.session.get(PartyOrg, number) if number is not None else None
    return org_target(org) if org is not None else None


register_scope_target("org", _org_scope)


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
        badge_cache.changed(owner_id=membership.user_id)
    audit.record(action, "membership", membership.id, actor=actor, actor_role=role, before=before,
                 after={"status": new_status, "org_id": org.id, "user_id": membership.user_id},
                 reason=reason)
    outcome = "revoked" if expected == "verified" else new_status
    verdict = {"verified": "已确认", "rejected": "未通过确认", "revoked": "已被撤销（转出或不再是党员）"}[outcome]
    notices.tell(membership.user_id, kind="membership_decision", subject=f"membership:{membership.id}",
                 outcome=outcome, title="党组织关系确认结果", body=f"您在{org.name}的党员身份{verdict}。",
                 page="pages/me/index", at=membership.reviewed_at, reason=reason if outcome != "verified" else None)
    return membership


def list_memberships(actor, org: PartyOrg, status: str | None, page: int, per_page: int) -> dict:
    from app.core.pagination import paginate

    authorize(actor, MEMBERSHIP_REVIEWER_ROLES + ("market_manager",), org_target(org))
    stmt = select(Membership).where(Membership.org_id == org.id)
    if status:
        stmt = stmt.where(Membership.status == status)
    return with_people(paginate(stmt.order_by(Membership.id), page, per_page))


# -- riders joining a station ---------------------------------------------------------------------
# Joining makes a rider part of the station's audience (its open activities, its leaderboard):
# the station's branch confirms each rider, or shares a join code that lets riders in at once.
JOIN_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I/L to misread
JOIN_CODE_LENGTH = 8
JOIN_CODE_TRIES_PER_HOUR = 10


@dataclass
class StationJoin:
    status: str  # joined / pending
    org_id: int
    joined_at: datetime | None = None
    request: StationJoinRequest | None = None


def join_station(user, org: PartyOrg, join_code: str | None) -> tuple[StationJoin, bool]:
    """A rider joins a station with its join code, or asks to join without it. Returns the
    outcome and whether anything new was recorded."""
    from app.identity.services import ensure_self_service_role

    if org.sector != "rider":
        raise APIError(code="ORG_NOT_RIDER_STATION")
    rider = _station_rider(org.id, user.id)
    if rider is not None:
        return StationJoin("joined", org.id, rider.joined_at), False
    ensure_self_service_role(user, "rider")
    if join_code is not None:
        _check_join_code(user, org, join_code)
        return _add_rider(org, user.id, via="join_code", actor=user), True
    return _ask_to_join(user, org)


def _station_rider(org_id: int, user_id: int) -> StationRider | None:
    return db.session.scalar(select(StationRider).where(StationRider.org_id == org_id,
                                                        StationRider.user_id == user_id))


def _check_join_code(user, org: PartyOrg, join_code: str) -> None:
    from app.core import ratelimit

    # Guessing codes costs tries: a handful per rider and hour.
    ratelimit.enforce("join-code", str(user.id), JOIN_CODE_TRIES_PER_HOUR, 3600, code="JOIN_CODE_RATE_LIMITED")
    given = join_code.strip().upper().encode()
    if not org.join_code or not hmac.compare_digest(given, org.join_code.encode()):
        raise APIError(code="JOIN_CODE_INVALID")


def _add_rider(org: PartyOrg, user_id: int, via: str, actor) -> StationJoin:
    insert_ignore(StationRider, {"org_id": org.id, "user_id": user_id, "joined_at": utcnow()},
                  ["org_id", "user_id"])
    rider = _station_rider(org.id, user_id)
    audit.record("station_rider.join", "party_org", org.id, actor=actor,
                 after={"user_id": user_id, "via": via})
    return StationJoin("joined", org.id, rider.joined_at)


def _ask_to_join(user, org: PartyOrg) -> tuple[StationJoin, bool]:
    now = utcnow()
    inserted = insert_ignore(StationJoinRequest, {"org_id": org.id, "user_id": user.id, "status": "pending",
                                                  "created_at": now, "updated_at": now}, ["org_id", "user_id"])
    request = db.session.scalar(select(StationJoinRequest).where(
        StationJoinRequest.org_id == org.id, StationJoinRequest.user_id == user.id))
    if not inserted and request.status == "rejected":  # asking again after a refusal
        compare_and_set(request, "rejected", {"status": "pending", "reviewed_by_id": None, "reviewed_at": None,
                                              "review_reason": None, "updated_at": now}, "STATION_JOIN_DECIDED")
        inserted = True
    return StationJoin("pending", org.id, request=request), bool(inserted)


def get_join_request(request_id: int) -> StationJoinRequest:
    return get_or_404(StationJoinRequest, request_id, "STATION_JOIN_NOT_FOUND")


def review_join_request(actor, request_id: int, decision: str, reason: str | None) -> StationJoinRequest:
    """The station's branch confirms (or refuses, with a reason) a rider who asked to join."""
    request = get_join_request(request_id)
    org = get_org(request.org_id)
    role = authorize(actor, MEMBERSHIP_REVIEWER_ROLES, org_target(org))
    reason = decision_reason(decision, reason)
    decide(request, actor, "pending", "approved" if decision == "approve" else "rejected", reason,
           "STATION_JOIN_DECIDED")
    if decision == "approve":
        _add_rider(org, request.user_id, via="confirmation", actor=actor)
    audit.record(f"station_join.{decision}", "station_join_request", request.id, actor=actor, actor_role=role,
                 before={"status": "pending"}, after={"status": request.status, "user_id": request.user_id},
                 reason=reason)
    verdict = "已通过，您已是本站点骑手。" if request.status == "approved" else "未通过。"
    notices.tell(request.user_id, kind="station_join_decision", subject=f"station_join:{request.id}",
                 outcome=request.status, title="加入站点申请结果", body=f"您加入{org.name}的申请{verdict}",
                 page="pages/me/index", at=request.reviewed_at, reason=reason if request.status != "approved" else None)
    return request


def list_join_requests(actor, org: PartyOrg, status: str | None, page: int, per_page: int) -> dict:
    from app.core.pagination import paginate

    authorize(actor, MEMBERSHIP_REVIEWER_ROLES, org_target(org))
    stmt = select(StationJoinRequest).where(StationJoinRequest.org_id == org.id)
    if status:
        stmt = stmt.where(StationJoinRequest.status == status)
    return with_people(paginate(stmt.order_by(StationJoinRequest.created_at, StationJoinRequest.id), page, per_page))


def new_join_code(actor, org: PartyOrg) -> PartyOrg:
    """A fresh code for the station (the old one stops working at once)."""
    role = authorize(actor, MEMBERSHIP_REVIEWER_ROLES, org_target(org))  # before any state check
    if org.sector != "rider":
        raise APIError(code="ORG_NOT_RIDER_STATION")
    org.join_code = "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(JOIN_CODE_LENGTH))
    db.session.flush()
    audit.record("party_org.join_code_new", "party_org", org.id, actor=actor, actor_role=role)
    return org


def disable_join_code(actor, org: PartyOrg) -> PartyOrg:
    role = authorize(actor, MEMBERSHIP_REVIEWER_ROLES, org_target(org))
    org.join_code = None
    db.session.flush()
    audit.record("party_org.join_code_off", "party_org", org.id, actor=actor, actor_role=role)
    return org


def view_join_code(actor, org: PartyOrg) -> PartyOrg:
    authorize(actor, MEMBERSHIP_REVIEWER_ROLES, org_target(org))
    return org
