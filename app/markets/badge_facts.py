"""What the markets publish to the badge: the stall behind a token (with its market, its
operating entity and its upheld complaints, riders' unrectified upheld reports among them), and
new badge versions when any of it changes."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import update

from app.badge.compute import UPHELD_WINDOW
from app.badge.facts import StallFacts, fact, provides
from app.core.reader import as_datetime, as_json, query, sql_time
from app.extensions import db
from app.markets.models import Merchant, Stall, VoidedStallToken

# Plain SQL on the badge reader's connection: this runs on every badge miss.
_STALL_SQL = (
    "SELECT s.id, s.number, s.merchant_id, s.badge_version, s.trading_rules, mk.name, m.name, m.kind, "
    "m.operator_name, m.owner_id FROM stalls s JOIN markets mk ON mk.id = s.market_id "
    "LEFT JOIN merchants m ON m.id = s.merchant_id WHERE s.token = ?")
_UPHELD_SQL = "SELECT reviewed_at FROM stall_feedback WHERE stall_id = ? AND status = 'upheld' AND reviewed_at > ?"


@provides("stall")
def stall_facts(token: str, now: datetime) -> StallFacts | None:
    rows = query(_STALL_SQL, (token,))
    if not rows:
        return None
    (stall_id, number, merchant_id, version, rules, market_name, merchant_name, merchant_kind,
     operator_name, owner_id) = rows[0]
    upheld = tuple(as_datetime(row[0]) for row in query(_UPHELD_SQL, (stall_id, sql_time(now - UPHELD_WINDOW))))
    upheld += fact("unrectified_reports")(stall_id, now)  # riders' upheld reports count alike (app.reports)
    return StallFacts(stall_id=stall_id, number=number, version=version, market_name=market_name,
                      merchant_id=merchant_id, merchant_name=merchant_name, merchant_kind=merchant_kind,
                      operator_name=operator_name, owner_id=owner_id, trading_rules=as_json(rules),
                      upheld_complaints_at=upheld)


@provides("bump")
def bump_versions(stall_id: int | None = None, merchant_id: int | None = None,
                  owner_id: int | None = None, market_id: int | None = None) -> list[str]:
    """New badge versions for one stall, every stall of an entity, every stall of every entity
    a user owns, or every stall of a market, in the caller's transaction; returns their tokens."""
    statement = update(Stall)
    if stall_id is not None:
        statement = statement.where(Stall.id == stall_id)
    elif market_id is not None:
        statement = statement.where(Stall.market_id == market_id)
    elif merchant_id is not None:
        statement = statement.where(Stall.merchant_id == merchant_id)
    elif owner_id is not None:
        owned = db.session.query(Merchant.id).filter(Merchant.owner_id == owner_id).scalar_subquery()
        statement = statement.where(Stall.merchant_id.in_(owned))
    else:
        raise ValueError("which stalls changed?")
    return [row[0] for row in db.session.execute(
        statement.values(badge_version=Stall.badge_version + 1).returning(Stall.token))]


@provides("voided")
def token_was_voided(token: str) -> dict | None:
    """A sticker token reissued away, as opposed to one that never existed: which stall it was
    ({"market", "number"}: the void page says so), or None."""
    voided = db.session.get(VoidedStallToken, token) if len(token) <= 32 else None
    if voided is None:
        return None
    stall = db.session.get(Stall, voided.stall_id)
    return {"market": stall.market.name, "number": stall.number}


@provides("all_tokens")
def all_tokens(missing_only: bool = False) -> list[str]:
    """Every live stall's token (or only those without a stored badge), for a rebuild."""
    from sqlalchemy import select

    from app.badge.models import StallBadge

    stmt = select(Stall.token).order_by(Stall.id)
    if missing_only:
        stmt = stmt.outerjoin(StallBadge, StallBadge.stall_id == Stall.id).where(StallBadge.stall_id.is_(None))
    return list(db.session.scalars(stmt))
