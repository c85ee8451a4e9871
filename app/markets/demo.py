"""Demo market in 万秀区 with 24 stalls, its manager, and a merchant holding stall A-01."""
from __future__ import annotations

from sqlalchemy import select

from app.core.time import utcnow
from app.extensions import db
from app.identity.services import ensure_self_service_role, find_or_create_user, grant_role
from app.markets.models import Market, Merchant, Stall, StallClaim
from app.markets.services import _fresh_tokens

MARKET_NAME = "梧州市万秀区东中农贸市场"
DEMO_USCC = "91450403MA5N000011"  # check digit per GB 32100
STALL_NUMBERS = [f"A-{i:02d}" for i in range(1, 13)] + [f"B-{i:02d}" for i in range(1, 13)]


def _market() -> Market:
    market = db.session.scalar(select(Market).where(Market.name == MARKET_NAME, Market.region_code == "450403"))
    if market is None:
        market = Market(name=MARKET_NAME, region_code="450403", kind="农贸市场",
                        address="广西梧州市万秀区东中路", lat=23.4770, lng=111.3050)
        db.session.add(market)
        db.session.flush()
    return market


def _stalls(market: Market) -> list[Stall]:
    have = set(db.session.scalars(select(Stall.number).where(Stall.market_id == market.id)))
    missing = [n for n in STALL_NUMBERS if n not in have]
    now = utcnow()
    for number, token in zip(missing, _fresh_tokens(len(missing))):
        db.session.add(Stall(market_id=market.id, number=number, token=token, token_issued_at=now))
    db.session.flush()
    return list(db.session.scalars(select(Stall).where(Stall.market_id == market.id).order_by(Stall.number)))


def seed(ctx: dict) -> None:
    market = _market()
    stalls = _stalls(market)
    manager = find_or_create_user("demo-manager")
    manager.nickname = manager.nickname or "东中市场管理方"
    grant_role(manager, "market_manager", f"market:{market.id}", reason="演示数据")
    owner = find_or_create_user("demo-merchant")
    owner.nickname = owner.nickname or "李记蔬菜"
    ensure_self_service_role(owner, "merchant")
    merchant = db.session.scalar(select(Merchant).where(Merchant.owner_id == owner.id, Merchant.uscc == DEMO_USCC))
    if merchant is None:
        merchant = Merchant(owner_id=owner.id, name="万秀区李记蔬菜店", kind="个体工商户", uscc=DEMO_USCC,
                            operator_name="李明")
        db.session.add(merchant)
        db.session.flush()
    first = stalls[0]
    if db.session.scalar(select(StallClaim).where(StallClaim.stall_id == first.id)) is None:
        db.session.add(StallClaim(stall_id=first.id, merchant_id=merchant.id, active_stall_id=first.id,
                                  status="confirmed", requested_by_id=owner.id, reviewed_by_id=manager.id,
                                  reviewed_at=utcnow(), review_reason="演示数据"))
        first.merchant_id = merchant.id
        first.trading_rules = {"returns": "质量问题七日内包退换", "pricing": "一货一签，明码标价",
                               "weighing": "使用经检定的电子秤，市场设有公平秤"}
        first.badge_version += 1
    db.session.flush()
    ctx.update({"market": market, "stalls": stalls, "demo-manager": manager, "demo-merchant": owner,
                "merchant": merchant})
