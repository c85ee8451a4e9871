"""Read side of credentials used by other features (stats, reminders)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, or_, select

from app.core.time import local_today
from app.extensions import db


def in_force_clause(Credential, today):
    """Verified and in force on local day `today` (valid until D means through the end of D)."""
    return and_(
        Credential.status == "verified",
        or_(Credential.valid_from.is_(None), Credential.valid_from <= today),
        or_(Credential.long_term.is_(True), Credential.valid_until >= today),
    )


def shown_counts_by_market(market_ids: list[int], now: datetime) -> dict[int, dict[str, int]]:
    """{market_id: {"licences_shown": n, "permits_shown": n}}: stalls of each market whose licence
    is verified and in force at `now`, and verified permits in force at `now` on those stalls."""
    from app.credentials.models import LICENCE_KIND, Credential
    from app.markets.models import Stall

    counts = {market_id: {"licences_shown": 0, "permits_shown": 0} for market_id in market_ids}
    if not market_ids:
        return counts
    today = local_today(now)
    shown = in_force_clause(Credential, today)
    licensed = (select(Stall.id.label("stall_id"), Stall.market_id, Stall.merchant_id)
                .where(Stall.market_id.in_(market_ids), Stall.merchant_id.in_(
                    select(Credential.merchant_id).where(Credential.kind == LICENCE_KIND, shown)))
                .subquery())
    for market_id, n in db.session.execute(
            select(licensed.c.market_id, func.count()).group_by(licensed.c.market_id)):
        counts[market_id]["licences_shown"] = n
    for market_id, n in db.session.execute(
            select(licensed.c.market_id, func.count())
            .join(Credential, Credential.merchant_id == licensed.c.merchant_id)
            .where(Credential.kind != LICENCE_KIND, shown).group_by(licensed.c.market_id)):
        counts[market_id]["permits_shown"] = n
    return counts
