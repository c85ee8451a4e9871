"""Rows for pledge and stats tests, written directly (stall claims are another feature's flow)."""
from __future__ import annotations

import secrets

from app.extensions import db
from app.markets.models import Market, Merchant, Stall
from app.pledges.demo import DEMO_TEMPLATE
from app.pledges.models import PledgeTemplate

_USCC = "91450400MA5L000000"


def make_template(region_code: str | None = "450000", **overrides) -> PledgeTemplate:
    values = {**DEMO_TEMPLATE, "region_code": region_code, "version": 1, "active": True, **overrides}
    template = PledgeTemplate(**values)
    db.session.add(template)
    db.session.commit()
    return template


def make_merchant(owner_id: int, name: str = "李小兰水果摊", operator: str = "李小兰") -> Merchant:
    merchant = Merchant(owner_id=owner_id, name=name, kind="个体工商户", uscc=_USCC, operator_name=operator)
    db.session.add(merchant)
    db.session.commit()
    return merchant


def make_stall(market: Market, number: str, merchant: Merchant | None = None) -> Stall:
    stall = Stall(market_id=market.id, number=number, token=secrets.token_urlsafe(12)[:16],
                  merchant_id=merchant.id if merchant else None)
    db.session.add(stall)
    db.session.commit()
    return stall
