"""Reminder series of 诚信经营承诺: a pledge about to lapse."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterable

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import aliased

from app.core.time import to_local, utcnow
from app.extensions import db
from app.markets.models import Merchant
from app.pledges.models import Pledge
from app.reminders.engine import Daily, pending_reviews, reminder_series
from app.reminders.outbox import Reminder, enqueue_committing, wx_date

PLEDGE_RENEWAL_DAYS = 30


@reminder_series("pledge_renewal", when=Daily("REMINDERS_DAILY_AT", 1), grace_seconds=6 * 3600,
                 description="诚信承诺续签提醒（30 天前）")
def pledge_renewal(now: datetime | None = None) -> dict:
    """Approved pledges whose term ends within 30 days: the entity's owner, once."""
    now = now or utcnow()
    renewal = aliased(Pledge)
    renewing = (select(renewal.id).where(renewal.merchant_id == Pledge.merchant_id, renewal.id != Pledge.id,
                                         or_(renewal.status == "pending",
                                             and_(renewal.status == "approved", renewal.valid_from > now)))
                .exists())
    due = db.session.execute(
        select(Pledge.id, Pledge.valid_until, Merchant.owner_id, Merchant.name)
        .join(Merchant, Merchant.id == Pledge.merchant_id)
        .where(Pledge.status == "approved", Pledge.valid_from <= now, Pledge.valid_until > now,
               Pledge.valid_until <= now + timedelta(days=PLEDGE_RENEWAL_DAYS), ~renewing)).all()

    def reminders() -> Iterable[Reminder]:
        for pledge_id, until, owner_id, merchant_name in due:
            # valid_until is the instant it lapses; the last day in force is the local day before.
            last_day = (to_local(until) - timedelta(microseconds=1)).date()
            yield Reminder(
                user_id=owner_id, kind="pledge_renewal", subject=f"pledge:{pledge_id}",
                period=f"{last_day.isoformat()}:d30", template_key="pledge_renewal",
                title="诚信经营承诺即将到期",
                # A renewal signed now begins when this pledge ends (services.review_pledge).
                body=f"{merchant_name}的诚信经营承诺有效期至 {wx_date(last_day)}。现在即可在小程序中续签，"
                     f"市场审核通过后新承诺在到期时接续生效，摊位的诚信承诺标识不会中断。",
                page=f"pages/pledges/detail?id={pledge_id}",
                wx_data={"thing1": "诚信经营承诺", "time2": wx_date(last_day), "thing3": "请在到期前续签"})

    added = enqueue_committing(reminders(), now)
    return {"due": len(due), "added": added}


@pending_reviews("pledges", "诚信承诺", "承诺")
def pending_pledges_by_market() -> list[tuple[int, int]]:
    return db.session.execute(
        select(Pledge.market_id, func.count(Pledge.id)).where(Pledge.status == "pending")
        .group_by(Pledge.market_id)).all()
