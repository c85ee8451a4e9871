"""Invalidation hooks for the public badge cache. Any change to a stall's records (credentials,
pledges, membership of its operator, complaints, claim) must call one of these in the same
transaction, so the next read cannot serve a badge older than the change.

(The stalls feature owns the cache itself; these are the only entry points other features use.)"""
from __future__ import annotations

from sqlalchemy import update

from app.extensions import db
from app.markets.models import Stall


def invalidate_stall(stall_id: int) -> None:
    db.session.execute(update(Stall).where(Stall.id == stall_id)
                       .values(badge_version=Stall.badge_version + 1))


def invalidate_merchant(merchant_id: int) -> None:
    """Every stall the business entity holds."""
    db.session.execute(update(Stall).where(Stall.merchant_id == merchant_id)
                       .values(badge_version=Stall.badge_version + 1))


def invalidate_owner(user_id: int) -> None:
    """Every stall of every entity the user owns (e.g. their party membership changed)."""
    from app.markets.models import Merchant

    merchant_ids = db.session.query(Merchant.id).filter(Merchant.owner_id == user_id).scalar_subquery()
    db.session.execute(update(Stall).where(Stall.merchant_id.in_(merchant_ids))
                       .values(badge_version=Stall.badge_version + 1))
