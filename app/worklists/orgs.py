"""Organisations: find a branch or a riders' station (anyone: what a member or rider needs to
claim or join), an organisation's verified members, and the scans an activity refused."""
from __future__ import annotations

from sqlalchemy import or_, select

from app.activities.models import CheckInRefusal
from app.activities.services import authorize_activity_organiser, get_activity
from app.core.errors import APIError
from app.core.pagination import paginate
from app.core.regions import Region, code_prefix
from app.extensions import db
from app.identity.auth import authorize
from app.identity.people import with_people
from app.orgs.models import Membership, PartyOrg
from app.orgs.services import MEMBERSHIP_REVIEWER_ROLES, get_org, org_target


def find_orgs(region: str | None, kind: str | None, sector: str | None, q: str | None,
              page: int, per_page: int, within=None) -> dict:
    """GET /orgs: public fields only (name, kind, region, station); by region (and below), kind,
    sector, and a name or station containing `q`. `within`: an SQL condition on PartyOrg that
    narrows the list further (the console: app.orgs.queries.organised_orgs_clause)."""
    stmt = select(PartyOrg) if within is None else select(PartyOrg).where(within)
    if region:
        if db.session.get(Region, region) is None:
            raise APIError(code="REGION_NOT_FOUND", details={"region": region})
        stmt = stmt.where(PartyOrg.region_code.like(code_prefix(region) + "%"))
    if kind:
        stmt = stmt.where(PartyOrg.kind == kind)
    if sector:
        stmt = stmt.where(PartyOrg.sector == sector)
    if q:
        stmt = stmt.where(or_(PartyOrg.name.contains(q, autoescape=True), PartyOrg.station.contains(q, autoescape=True)))
    return paginate(stmt.order_by(PartyOrg.region_code, PartyOrg.name, PartyOrg.id), page, per_page)


def members(actor, org_id: int, page: int, per_page: int) -> dict:
    """GET /orgs/{id}/members: the verified members, with names, for the branch's organisers."""
    org = get_org(org_id)
    authorize(actor, MEMBERSHIP_REVIEWER_ROLES, org_target(org))
    stmt = (select(Membership).where(Membership.org_id == org.id, Membership.status == "verified")
            .order_by(Membership.reviewed_at, Membership.id))
    return with_people(paginate(stmt, page, per_page))


def refused_scans(actor, activity_id: int, page: int, per_page: int) -> dict:
    """GET /activities/{id}/refused-scans: who tried to check in and why it was refused (one row
    per person and reason, with how often and when last), latest first."""
    activity = get_activity(activity_id)
    authorize_activity_organiser(actor, activity)
    stmt = (select(CheckInRefusal).where(CheckInRefusal.activity_id == activity.id)
            .order_by(CheckInRefusal.at.desc(), CheckInRefusal.id.desc()))
    return with_people(paginate(stmt, page, per_page))
