"""Reminder series of the markets: the managers' daily digest of what waits for their review.

What waits is counted by each feature (`@pending_reviews` next to its models: stall claims here,
documents in credentials, pledges in pledges); the digest adds them up per market."""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

from sqlalchemy import func, select

from app.core.time import local_today, utcnow
from app.extensions import db
from app.markets.models import Market, Stall, StallClaim
from app.reminders.engine import (Daily, Every, all_pending_reviews, managers_of_markets, pending_reviews,
                                  reminder_series)
from app.reminders.outbox import Reminder, enqueue_committing


@pending_reviews("claims", "摊位认领", "认领")
def pending_claims_by_market() -> list[tuple[int, int]]:
    return db.session.execute(
        select(Stall.market_id, func.count(StallClaim.id)).join(Stall, Stall.id == StallClaim.stall_id)
        .where(StallClaim.status == "pending").group_by(Stall.market_id)).all()


@reminder_series("review_digest", when=Daily("REMINDERS_DIGEST_AT"), grace_seconds=3 * 3600,
                 description="待审核事项每日汇总")
def review_digest(now: datetime | None = None) -> dict:
    """Each market manager with something waiting gets one message a day with the counts."""
    now = now or utcnow()
    kinds = all_pending_reviews()
    counts: dict[int, dict[str, int]] = {}
    for kind in kinds:
        for market_id, n in kind.count_by_market():
            counts.setdefault(int(market_id), {k.key: 0 for k in kinds})[kind.key] = n
    if not counts:
        return {"markets": 0, "added": 0}
    names = dict(db.session.execute(select(Market.id, Market.name).where(Market.id.in_(counts))).all())
    managers = db.session.execute(managers_of_markets()).all()
    day = local_today(now)

    def reminders() -> Iterable[Reminder]:
        for user_id, market_key in managers:
            if not market_key.isdigit() or int(market_key) not in counts:
                continue
            market_id = int(market_key)
            waiting = counts[market_id]
            total = sum(waiting.values())
            yield Reminder(
                user_id=user_id, kind="review_digest", subject=f"market:{market_id}", period=day.isoformat(),
                template_key="review_digest", title="今日待审核事项",
                body=f"{names.get(market_id, '')}有 {total} 项待审核："
                     + "、".join(f"{k.label} {waiting[k.key]} 项" for k in kinds) + "。",
                page=f"pages/review/index?market_id={market_id}",
                wx_data={"thing1": names.get(market_id, "市场"), "number2": str(total),
                         "thing3": " ".join(f"{k.short}{waiting[k.key]}" for k in kinds)})

    added = enqueue_committing(reminders(), now)
    return {"markets": len(counts), "added": added}


@reminder_series("badge_sweep", when=Every(minutes=5), grace_seconds=240,
                 description="公示页到期重算（证照到期、投诉满 90 天等）")
def badge_sweep(now: datetime | None = None) -> dict:
    """Stored badges whose changes_at has passed are recomputed ahead of their next read (a
    read would recompute one anyway; this keeps the first scan after an expiry fast)."""
    from app.badge.cache import sweep

    return {"recomputed": sweep(now or utcnow())}
