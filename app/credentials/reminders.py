"""Reminder series of 亮照亮证: licences and permits about to expire."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Iterable

from sqlalchemy import String, cast, exists, func, not_, select

from app.core.time import local_today, utcnow
from app.credentials.models import CREDENTIAL_KINDS, Credential
from app.extensions import db
from app.markets.models import Merchant, Stall
from app.reminders.engine import Daily, managers_of_markets, pending_reviews, reminder_series, stage_of
from app.reminders.outbox import Reminder, enqueue_committing, wx_date

CREDENTIAL_STAGES = ((0, "d0"), (1, "d1"), (7, "d7"), (30, "d30"))


@reminder_series("credential_expiry", when=Daily("REMINDERS_DAILY_AT"), grace_seconds=6 * 3600,
                 description="证照到期提醒（30/7/1 天前与当天）")
def credential_expiry(now: datetime | None = None) -> dict:
    """Verified licences/permits expiring within 30 days: the owner at 30, 7, 1 days and on the
    last day (valid_until); on that day the managers of the markets where the entity holds a
    stall too. A document replaced by a newer one of the same kind is not reminded."""
    now = now or utcnow()
    today = local_today(now)
    newer = Credential.__table__.alias("newer")
    superseded = exists().where(
        newer.c.merchant_id == Credential.merchant_id, newer.c.kind == Credential.kind,
        newer.c.id != Credential.id, newer.c.status.in_(("pending", "verified")),
        (newer.c.long_term.is_(True)) | (newer.c.valid_until > Credential.valid_until))
    due = db.session.execute(
        select(Credential.id, Credential.kind, Credential.valid_until, Merchant.id, Merchant.owner_id,
               Merchant.name)
        .join(Merchant, Merchant.id == Credential.merchant_id)
        .where(Credential.status == "verified",
               Credential.valid_until >= today, Credential.valid_until <= today + timedelta(days=30),
               not_(superseded))).all()

    def reminders() -> Iterable[Reminder]:
        for cid, kind, until, _, owner_id, merchant_name in due:
            yield _owner_reminder(owner_id, cid, CREDENTIAL_KINDS.get(kind, kind), until, today, merchant_name)

    last_day = [row for row in due if row.valid_until == today]
    manager_rows = []
    if last_day:
        managers = managers_of_markets().subquery()
        merchant_ids = {row[3] for row in last_day}
        manager_rows = db.session.execute(
            select(Stall.merchant_id, managers.c.user_id).distinct()
            .join(managers, managers.c.market_key == cast(Stall.market_id, String))
            .where(Stall.merchant_id.in_(merchant_ids))).all()

    def manager_reminders() -> Iterable[Reminder]:
        by_merchant: dict[int, list[int]] = {}
        for merchant_id, user_id in manager_rows:
            by_merchant.setdefault(merchant_id, []).append(user_id)
        for cid, kind, until, merchant_id, _, merchant_name in last_day:
            for user_id in by_merchant.get(merchant_id, []):
                yield _manager_reminder(user_id, cid, CREDENTIAL_KINDS.get(kind, kind), until, merchant_name)

    added = enqueue_committing(reminders(), now) + enqueue_committing(manager_reminders(), now)
    return {"due": len(due), "managers": len(manager_rows), "added": added}


def _owner_reminder(user_id: int, credential_id: int, label: str, until: date, today: date,
                    merchant_name: str) -> Reminder:
    days_left = (until - today).days
    stage = stage_of(days_left, CREDENTIAL_STAGES)
    when = "今天是最后有效日" if days_left == 0 else f"还有 {days_left} 天到期"
    return Reminder(
        user_id=user_id, kind="credential_expiry", subject=f"credential:{credential_id}",
        period=f"{until.isoformat()}:{stage}", template_key="credential_expiry",
        title="证照今日到期" if days_left == 0 else "证照即将到期",
        body=f"{merchant_name}的{label}有效期至 {wx_date(until)}，{when}。请及时办理延续，并在小程序中上传新证照，"
             f"以免摊位亮照亮证标识失效。",
        page=f"pages/credentials/detail?id={credential_id}",
        wx_data={"thing1": label, "time2": wx_date(until), "thing3": f"{when}，请及时办理延续"})


def _manager_reminder(user_id: int, credential_id: int, label: str, until: date, merchant_name: str) -> Reminder:
    return Reminder(
        user_id=user_id, kind="credential_expiry", subject=f"credential:{credential_id}",
        period=f"{until.isoformat()}:d0", template_key="credential_expiry",
        title="经营户证照今日到期",
        body=f"经营户「{merchant_name}」的{label}有效期至今天（{wx_date(until)}），明天起该摊位将不再显示该证照，"
             f"请督促其办理延续。",
        page=f"pages/credentials/detail?id={credential_id}",
        wx_data={"thing1": f"{merchant_name}{label}", "time2": wx_date(until), "thing3": "今日到期，请督促经营户办理延续"})


@pending_reviews("credentials", "证照", "证照")
def pending_credentials_by_market() -> list[tuple[int, int]]:
    """Pending documents of entities holding a stall, per market."""
    held = select(Stall.market_id, Stall.merchant_id).where(Stall.merchant_id.is_not(None)).distinct().subquery()
    return db.session.execute(
        select(held.c.market_id, func.count(Credential.id)).join(held, held.c.merchant_id == Credential.merchant_id)
        .where(Credential.status == "pending").group_by(held.c.market_id)).all()
