"""Demo 示范: stall A-01 (李记蔬菜店) as 示范摊位 and its market as 示范市场, conferred by the demo
regulator of 梧州市 through the same service the API uses (so the criteria are checked).

The demo merchant's pledge is dated back 200 days (signed last year, in the story) so that the
default "pledge in force for 180 days" holds; 万秀区's own criteria accept a market with a single
stall in business, as the demo market has one."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.badge import cache as badge_cache
from app.core.time import utcnow
from app.exemplars import services
from app.exemplars.models import ExemplarTitle
from app.extensions import db
from app.identity.services import find_or_create_user
from app.pledges.models import Pledge
from app.pledges.services import term_end

REGION = "450403"


def _pledge_since_last_year(merchant_id: int) -> None:
    pledge = db.session.scalar(select(Pledge).where(Pledge.merchant_id == merchant_id, Pledge.status == "approved"))
    if pledge is None or pledge.valid_from is None or pledge.valid_from <= utcnow() - timedelta(days=190):
        return
    pledge.valid_from = utcnow() - timedelta(days=200)
    pledge.valid_until = term_end(pledge.valid_from, pledge.term_months)
    db.session.flush()
    badge_cache.changed(merchant_id=merchant_id)


def seed(ctx: dict) -> None:
    market, merchant, stalls = ctx.get("market"), ctx.get("merchant"), ctx.get("stalls")
    if not (market and merchant and stalls):
        return
    if db.session.scalar(select(ExemplarTitle.id).where(ExemplarTitle.market_id == market.id)) is not None:
        return  # seeded before
    regulator = find_or_create_user("demo-regulator")
    _pledge_since_last_year(merchant.id)
    services.set_criteria(regulator, {"region": REGION, "market": {"min_stalls": 1}})
    services.confer(regulator, {"kind": "stall", "target": stalls[0].token,
                                "citation": "亮照亮证齐全，诚信经营承诺连续履行，近一年无投诉"})
    services.confer(regulator, {"kind": "market", "target": str(market.id),
                                "citation": "市场党支部引领，放心摊位全覆盖"})
