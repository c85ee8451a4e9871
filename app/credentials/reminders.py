"""Reminder series of 亮照亮证: licences and permits about to expire."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import Date, String, case, cast, exists, func, literal, not_, select, union_all

from app.core.time import local_today, utcnow
from app.credentials.models import CREDENTIAL_KINDS, Credential
from app.extensions import db
from app.markets.models import Merchant, Stall
from app.reminders.engine import Daily, managers_of_markets, pending_reviews, reminder_series, stage_of
from app.reminders.outbox import enqueue_select, not_queued, wechat_columns, wx_date

CREDENTIAL_STAGES = ((0, "d0"), (1, "d1"), (7, "d7"), (30, "d30"))
HORIZON_DAYS = 30


@reminder_series("credential_expiry", when=Daily("REMINDERS_DAILY_AT"), grace_seconds=6 * 3600,
                 description="证照到期提醒（30/7/1 天前与当天）")
def credential_expiry(now: datetime | None = None) -> dict:
    """Verified licences/permits expiring within 30 days: the owner at 30, 7, 1 days and on the
    last day (valid_until); on that day the managers of the markets where the entity holds a
    stall too. A document replaced by a newer one of the same kind is not reminded.

    Each is one INSERT … SELECT in the database (a province has ~100,000 due documents a day):
    the reminders already in the outbox are filtered out before their texts are built (and ON
    CONFLICT still decides a race), so a rerun costs about its due query."""
    now = now or utcnow()
    today = local_today(now)
    owners = enqueue_select(_owner_reminders(today, now))
    db.session.commit()
    managers = enqueue_select(_manager_reminders(today, now))
    db.session.commit()
    return {"owners": owners, "managers": managers, "added": owners + managers}


def due_credentials(today: date):
    """The due query: verified documents whose last day is within HORIZON_DAYS and that no newer
    document of the same kind replaces, with their entity."""
    newer = Credential.__table__.alias("newer")
    superseded = exists().where(
        newer.c.merchant_id == Credential.merchant_id, newer.c.kind == Credential.kind,
        newer.c.id != Credential.id, newer.c.status.in_(("pending", "verified")),
        (newer.c.long_term.is_(True)) | (newer.c.valid_until > Credential.valid_until))
    return (select(Credential.id, Credential.kind, Credential.valid_until, Merchant.id.label("merchant_id"),
                   Merchant.owner_id, Merchant.name.label("merchant_name"))
            .join(Merchant, Merchant.id == Credential.merchant_id)
            .where(Credential.status == "verified",
                   Credential.valid_until >= today, Credential.valid_until <= today + timedelta(days=HORIZON_DAYS),
                   not_(superseded)))


def _days(today: date):
    """One row per last day within the horizon with the texts that depend on it (stage, "还有
    7 天到期"), worked out here in Python, joined to the due documents in SQL."""
    rows = []
    for left in range(HORIZON_DAYS + 1):
        until = today + timedelta(days=left)
        when = "今天是最后有效日" if left == 0 else f"还有 {left} 天到期"
        rows.append(select(
            literal(until, Date).label("until"),
            literal(f"{until.isoformat()}:{stage_of(left, CREDENTIAL_STAGES)}", String).label("period"),
            literal("证照今日到期" if left == 0 else "证照即将到期", String).label("title"),
            literal(f"有效期至 {wx_date(until)}，{when}。请及时办理延续，并在小程序中上传新证照，"
                    f"以免摊位亮照亮证标识失效。", String).label("body_tail"),
            literal(wx_date(until), String).label("time2"),
            literal(f"{when}，请及时办理延续", String).label("thing3")))
    return union_all(*rows).subquery("days")


def _label(kind):
    return case(CREDENTIAL_KINDS, value=kind, else_=kind)


def _owner_reminders(today: date, now: datetime):
    # MATERIALIZED: the due set is found once, as the due query alone is; joined in place,
    # PostgreSQL splits it into one scan per day of `days` and reads the table 31 times.
    due = due_credentials(today).cte("due").prefix_with("MATERIALIZED")
    days = _days(today)
    label = _label(due.c.kind)
    subject = literal("credential:", String) + cast(due.c.id, String)
    return (select(*wechat_columns(
        user_id=due.c.owner_id, kind="credential_expiry", subject=subject,
        period=days.c.period, template_key="credential_expiry", title=days.c.title,
        body=due.c.merchant_name + "的" + label + days.c.body_tail,
        page=literal("pages/credentials/detail?id=", String) + cast(due.c.id, String),
        wx_data={"thing1": label, "time2": days.c.time2, "thing3": days.c.thing3}, now=now))
        .select_from(due).join(days, days.c.until == due.c.valid_until)
        .where(not_queued(due.c.owner_id, "credential_expiry", subject, days.c.period)))


def _manager_reminders(today: date, now: datetime):
    """Managers of every market where an entity whose document ends today holds a stall."""
    last_day = due_credentials(today).where(Credential.valid_until == today).subquery("last_day")
    managers = managers_of_markets().subquery("managers")
    pairs = (select(last_day.c.id, last_day.c.kind, last_day.c.merchant_name, managers.c.user_id).distinct()
             .join(Stall, Stall.merchant_id == last_day.c.merchant_id)
             .join(managers, managers.c.market_key == cast(Stall.market_id, String))).subquery("pairs")
    label = _label(pairs.c.kind)
    credential = cast(pairs.c.id, String)
    subject, period = literal("credential:", String) + credential, literal(f"{today.isoformat()}:d0", String)
    return select(*wechat_columns(
        user_id=pairs.c.user_id, kind="credential_expiry", subject=subject,
        period=period, template_key="credential_expiry",
        title=literal("经营户证照今日到期", String),
        body=(literal("经营户「", String) + pairs.c.merchant_name + "」的" + label
              + f"有效期至今天（{wx_date(today)}），明天起该摊位将不再显示该证照，请督促其办理延续。"),
        page=literal("pages/credentials/detail?id=", String) + credential,
        wx_data={"thing1": pairs.c.merchant_name + label, "time2": literal(wx_date(today), String),
                 "thing3": literal("今日到期，请督促经营户办理延续", String)}, now=now)).where(
        not_queued(pairs.c.user_id, "credential_expiry", subject, period))


@pending_reviews("credentials", "证照", "证照")
def pending_credentials_by_market() -> list[tuple[int, int]]:
    """Pending documents of entities holding a stall, per market."""
    held = select(Stall.market_id, Stall.merchant_id).where(Stall.merchant_id.is_not(None)).distinct().subquery()
    return db.session.execute(
        select(held.c.market_id, func.count(Credential.id)).join(held, held.c.merchant_id == Credential.merchant_id)
        .where(Credential.status == "pending").group_by(held.c.market_id)).all()
