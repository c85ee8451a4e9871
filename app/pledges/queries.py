"""Read side of pledges used by other features (the public badge)."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from app.core.time import isoformat_local, to_local
from app.extensions import db
from app.markets.models import Market
from app.pledges.models import Pledge, in_force_clause


def mask_name(name: str | None) -> str:
    """张三丰 -> 张*: a consumer sees that a person signed, not who."""
    name = (name or "").strip()
    return f"{name[0]}*" if name else ""


def last_local_day(valid_until: datetime | None) -> str | None:
    """valid_until is the exclusive end (local midnight after the last day)."""
    if valid_until is None:
        return None
    return (to_local(valid_until) - timedelta(microseconds=1)).date().isoformat()


def pledge_badge_entry(merchant_id: int, now: datetime) -> dict | None:
    """The 诚信承诺 entry of the badge for an entity at `now`, or None when no pledge is in force.
    Shape: {"items": [str], "signer": str, "approved_at": iso, "valid_until": iso,
    "market": str, "changes_at": naive-UTC datetime | None (the moment this entry turns off)}.
    Also "title", "valid_through" (the last local day in force, YYYY-MM-DD) and
    "extra_commitments" (str | None; passed the content check when signed).

    One indexed query: it runs on every badge cache miss."""
    row = db.session.execute(
        select(Pledge.title, Pledge.items, Pledge.extra_commitments, Pledge.signer_name,
               Pledge.valid_from, Pledge.valid_until, Market.name)
        .join(Market, Market.id == Pledge.market_id)
        .where(Pledge.merchant_id == merchant_id, in_force_clause(now))
        .order_by(Pledge.valid_from.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    title, items, extra, signer, valid_from, valid_until, market_name = row
    return {
        "title": title,
        "items": list(items),
        "extra_commitments": extra,
        "signer": mask_name(signer),
        "approved_at": isoformat_local(valid_from),
        "valid_until": isoformat_local(valid_until),
        "valid_through": last_local_day(valid_until),
        "market": market_name,
        "changes_at": valid_until,
    }
