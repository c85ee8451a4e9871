"""Markets: creation in a regulator's region, manager appointment."""
from __future__ import annotations

from app.core import audit
from app.core.auth import Target, authorize
from app.core.errors import APIError, NotFound
from app.extensions import db
from app.markets.models import Market
from app.markets.regions import Region


def market_target(market: Market) -> Target:
    return Target(region_code=market.region_code, market_id=market.id)


def get_market(market_id: int) -> Market:
    market = db.session.get(Market, market_id)
    if market is None:
        raise NotFound(code="MARKET_NOT_FOUND")
    return market


def create_market(actor, data: dict) -> Market:
    region = db.session.get(Region, data["region_code"])
    if region is None:
        raise APIError(code="REGION_NOT_FOUND", details={"region_code": data["region_code"]})
    role = authorize(actor, ["regulator"], Target(region_code=region.code))
    market = Market(created_by_id=actor.id, **data)
    db.session.add(market)
    db.session.flush()
    audit.record("market.create", "market", market.id, actor=actor, actor_role=role,
                 after={"name": market.name, "region_code": market.region_code})
    return market


def view_market(actor, market_id: int) -> Market:
    market = get_market(market_id)
    authorize(actor, ["regulator", "market_manager"], market_target(market))
    return market
