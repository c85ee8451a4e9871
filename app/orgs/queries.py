"""Read side of party organisations, used by other features (badge, /me, activities)."""
from __future__ import annotations

from sqlalchemy import select

from app.badge.facts import provides
from app.extensions import db
from app.orgs.models import MEMBER_STANDINGS, ORG_KINDS, Membership, PartyOrg, StationRider


# Runs on every badge cache miss: plain SQL on the badge reader's connection (committed data).
_PARTY_OPERATOR_SQL = (
    "SELECT o.name FROM party_memberships pm JOIN party_orgs o ON o.id = pm.org_id "
    "WHERE pm.user_id = ? AND pm.status = 'verified' ORDER BY pm.id LIMIT 1")


@provides("party")
def party_member_operator(owner_user_id: int) -> dict | None:
    """{"org": name} when the user who operates the entity is a verified party member, else None.
    One indexed query of committed data (see app.core.reader.query)."""
    from app.core.reader import query

    rows = query(_PARTY_OPERATOR_SQL, (owner_user_id,))
    return {"org": rows[0][0]} if rows else None


def memberships_for_user(user) -> list[dict]:
    """The user's memberships for GET /me: party memberships (any status) and stations joined."""
    rows = db.session.execute(
        select(Membership, PartyOrg).join(PartyOrg, PartyOrg.id == Membership.org_id)
        .where(Membership.user_id == user.id).order_by(Membership.id)).all()
    items = [{
        "kind": "party_member", "id": m.id, "org_id": org.id, "org_name": org.name,
        "org_kind": org.kind, "org_kind_label": ORG_KINDS.get(org.kind), "sector": org.sector,
        "standing": m.standing, "standing_label": MEMBER_STANDINGS.get(m.standing),
        "floating": m.floating, "home_org_name": m.home_org_name, "status": m.status,
    } for m, org in rows]
    stations = db.session.execute(
        select(StationRider, PartyOrg).join(PartyOrg, PartyOrg.id == StationRider.org_id)
        .where(StationRider.user_id == user.id).order_by(StationRider.id)).all()
    items += [{
        "kind": "station_rider", "id": r.id, "org_id": org.id, "org_name": org.name,
        "station": org.station, "platform": org.platform, "status": "verified",
    } for r, org in stations]
    return items


def verified_org_ids(user_id: int) -> list[int]:
    return list(db.session.scalars(select(Membership.org_id).where(
        Membership.user_id == user_id, Membership.status == "verified")))


def station_org_ids(user_id: int) -> list[int]:
    return list(db.session.scalars(select(StationRider.org_id).where(StationRider.user_id == user_id)))


def is_verified_member(user_id: int, org_id: int) -> bool:
    return db.session.scalar(select(Membership.id).where(
        Membership.org_id == org_id, Membership.user_id == user_id,
        Membership.status == "verified")) is not None


def is_station_rider(user_id: int, org_id: int) -> bool:
    return db.session.scalar(select(StationRider.id).where(
        StationRider.org_id == org_id, StationRider.user_id == user_id)) is not None


def descendant_ids(org_ids: list[int]) -> set[int]:
    """The organisations and everything below them (breadth first; hierarchies are shallow)."""
    seen = set(org_ids)
    frontier = list(org_ids)
    while frontier:
        children = list(db.session.scalars(select(PartyOrg.id).where(PartyOrg.parent_id.in_(frontier))))
        frontier = [c for c in children if c not in seen]
        seen.update(frontier)
    return seen


def organised_orgs_clause(user):
    """organised_org_ids as an SQL condition on PartyOrg (a province regulator's region is one
    range, not a list of 20,000 ids); None means all (admin)."""
    from sqlalchemy import false, or_

    from app.core.regions import code_prefix
    from app.identity.auth import scopes_of

    if any(g.role == "admin" for g in user.grants):
        return None
    conditions = []
    secretary_orgs = [int(g.scope_id) for g in scopes_of(user, "branch_secretary")
                      if g.scope_type == "org" and g.scope_id.isdigit()]
    if secretary_orgs:
        conditions.append(PartyOrg.id.in_(descendant_ids(secretary_orgs)))
    markets = [int(g.scope_id) for g in scopes_of(user, "market_manager")
               if g.scope_type == "market" and g.scope_id.isdigit()]
    if markets:
        conditions.append(PartyOrg.market_id.in_(markets))
    for grant in scopes_of(user, "regulator"):
        if grant.scope_type == "region":
            conditions.append(PartyOrg.region_code.like(code_prefix(grant.scope_id) + "%"))
    return or_(*conditions) if conditions else false()


def organised_org_ids(user) -> set[int] | None:
    """Organisations the user runs through a role (secretary of it or an ancestor, manager of
    its market, regulator of its region). None means all (admin)."""
    from app.identity.auth import scopes_of
    from app.core.regions import code_prefix

    grants = [g for g in user.grants if g.role in ("admin", "branch_secretary", "market_manager", "regulator")]
    if any(g.role == "admin" for g in grants):
        return None
    ids: set[int] = set()
    secretary_orgs = [int(g.scope_id) for g in scopes_of(user, "branch_secretary")
                      if g.scope_type == "org" and g.scope_id.isdigit()]
    if secretary_orgs:
        ids |= descendant_ids(secretary_orgs)
    markets = [int(g.scope_id) for g in scopes_of(user, "market_manager")
               if g.scope_type == "market" and g.scope_id.isdigit()]
    if markets:
        ids |= set(db.session.scalars(select(PartyOrg.id).where(PartyOrg.market_id.in_(markets))))
    for grant in scopes_of(user, "regulator"):
        if grant.scope_type == "region":
            ids |= set(db.session.scalars(select(PartyOrg.id).where(
                PartyOrg.region_code.like(code_prefix(grant.scope_id) + "%"))))
    return ids
