"""Demo organisations: a committee over a market branch (tied to the demo market) and a rider
branch with its station; demo-merchant is a verified member (so its stall shows 共产党员经营户),
demo-rider a floating member and a rider of the station. Idempotent."""
from __future__ import annotations

from sqlalchemy import select

from app.badge import cache as badge_cache
from app.core.time import utcnow
from app.extensions import db
from app.identity.services import ensure_self_service_role, find_or_create_user, grant_role
from app.markets.models import Market
from app.orgs.models import Membership, PartyOrg, StationRider

REGION = "450403"
MARKET_NAME = "梧州市万秀区东中农贸市场"


def _org(name: str, **values) -> PartyOrg:
    org = db.session.scalar(select(PartyOrg).where(PartyOrg.name == name, PartyOrg.region_code == REGION))
    if org is None:
        org = PartyOrg(name=name, region_code=REGION, **values)
        db.session.add(org)
        db.session.flush()
    return org


def _verified_member(org: PartyOrg, user, reviewer, **values) -> None:
    membership = db.session.scalar(select(Membership).where(Membership.org_id == org.id,
                                                            Membership.user_id == user.id))
    if membership is None:
        db.session.add(Membership(org_id=org.id, user_id=user.id, status="verified", reviewed_by_id=reviewer.id,
                                  reviewed_at=utcnow(), review_reason="演示数据", **values))
        db.session.flush()
        badge_cache.changed(owner_id=user.id)


def seed(ctx: dict) -> None:
    market = ctx.get("market") or db.session.scalar(select(Market).where(Market.name == MARKET_NAME))
    committee = _org("万秀区个体私营经济党委", kind="committee", sector="market")
    market_branch = _org("东中市场党支部", kind="branch", sector="market", parent_id=committee.id,
                         market_id=market.id if market else None)
    rider_branch = _org("万秀区快递外卖骑手党支部", kind="branch", sector="rider", parent_id=committee.id,
                        station="万秀区美团站", platform="美团")
    if rider_branch.join_code is None:  # the demo rider station's code, for trying the join flow
        rider_branch.join_code = "WZQS2026"

    secretary = find_or_create_user("demo-secretary")
    secretary.nickname = secretary.nickname or "东中市场党支部书记"
    grant_role(secretary, "branch_secretary", f"org:{market_branch.id}", reason="演示数据")
    rider_secretary = find_or_create_user("demo-rider-secretary")
    rider_secretary.nickname = rider_secretary.nickname or "骑手党支部书记"
    grant_role(rider_secretary, "branch_secretary", f"org:{rider_branch.id}", reason="演示数据")

    merchant = find_or_create_user("demo-merchant")
    merchant.real_name = merchant.real_name or "李明"
    _verified_member(market_branch, merchant, secretary, standing="formal")

    rider = find_or_create_user("demo-rider")
    rider.nickname = rider.nickname or "美团骑手小王"
    rider.real_name = rider.real_name or "王小军"
    ensure_self_service_role(rider, "rider")
    _verified_member(rider_branch, rider, rider_secretary, standing="formal", floating=True,
                     home_org_name="岑溪市归义镇谢村党支部")
    if db.session.scalar(select(StationRider).where(StationRider.org_id == rider_branch.id,
                                                    StationRider.user_id == rider.id)) is None:
        db.session.add(StationRider(org_id=rider_branch.id, user_id=rider.id))
    db.session.flush()
    ctx.update({"committee": committee, "market_branch": market_branch, "rider_branch": rider_branch,
                "demo-secretary": secretary, "demo-rider-secretary": rider_secretary, "demo-rider": rider})
