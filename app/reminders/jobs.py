"""The scheduled jobs. Each takes `now` (naive UTC, default utcnow()) so tests pass time in, runs
inside an app context, commits per batch, and returns counts for the run log.

Sweeps are set-based: one query finds what is due (on indexed columns), the rows are computed
from it and inserted in batches with ON CONFLICT DO NOTHING on the dedupe key
(user, kind, subject, period), so a rerun, a catch-up after downtime or a second scheduler
adds nothing already there. Stages are buckets ("7 days or fewer left"), not exact days, so a
day the scheduler missed is caught up the next time it runs.

A source whose models are not importable yet is skipped with a log line."""
from __future__ import annotations

import importlib
import logging
from datetime import date, datetime, timedelta
from typing import Callable, Iterable

from flask import current_app
from sqlalchemy import String, and_, cast, exists, func, not_, select

from app.core.time import local_midnight_utc, local_today, to_local, utcnow
from app.extensions import db
from app.reminders.outbox import Reminder, enqueue_committing, wx_date, wx_time

log = logging.getLogger(__name__)

CREDENTIAL_STAGES = ((0, "d0"), (1, "d1"), (7, "d7"), (30, "d30"))
PLEDGE_RENEWAL_DAYS = 30
ACTIVITY_STAGES = ((timedelta(hours=1), "h1"), (timedelta(hours=24), "h24"))
THEME_DAY_DEADLINE = 5  # 主题党日 should be scheduled by the 5th of the month
BRANCH_KINDS = ("branch", "joint_branch")


class SourceMissing(Exception):
    """A source feature's model is not there (yet): the job is skipped, not failed."""


def _source(module: str, *names: str):
    try:
        loaded = importlib.import_module(module)
        return [getattr(loaded, name) for name in names]
    except (ImportError, AttributeError) as exc:
        raise SourceMissing(f"{module}: {exc}") from exc


def _skipped(job: str, exc: SourceMissing) -> dict:
    log.warning("reminder job %s skipped: source not available (%s)", job, exc)
    return {"skipped": str(exc)}


def _managers_of_markets():
    """(user_id, market_id) of every active market-manager grant."""
    from app.identity.models import RoleGrant

    return (select(RoleGrant.user_id, RoleGrant.scope_id.label("market_key"))
            .where(RoleGrant.role == "market_manager", RoleGrant.scope_type == "market",
                   RoleGrant.revoked_at.is_(None)))


def _secretaries_of(org_id_column):
    from app.identity.models import RoleGrant

    return and_(RoleGrant.role == "branch_secretary", RoleGrant.scope_type == "org",
                RoleGrant.scope_id == cast(org_id_column, String), RoleGrant.revoked_at.is_(None))


# -- 亮照亮证: licence and permit expiry -------------------------------------------------------

def stage_of(left, stages) -> str:
    """The first (limit, stage) whose limit `left` is within: which reminder of a series is due."""
    for limit, stage in stages:
        if left <= limit:
            return stage
    raise ValueError(left)


def credential_expiry(now: datetime | None = None) -> dict:
    """Verified licences/permits expiring within 30 days: the owner at 30, 7, 1 days and on the
    last day (valid_until); on that day the managers of the markets where the entity holds a
    stall too. A document replaced by a newer one of the same kind is not reminded."""
    now = now or utcnow()
    try:
        Credential, kinds = _source("app.credentials.models", "Credential", "CREDENTIAL_KINDS")
        Merchant, Stall = _source("app.markets.models", "Merchant", "Stall")
    except SourceMissing as exc:
        return _skipped("credential_expiry", exc)
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
            yield _credential_reminder(owner_id, cid, kinds.get(kind, kind), until, today, merchant_name)

    last_day = [row for row in due if row.valid_until == today]
    manager_rows = []
    if last_day:
        managers = _managers_of_markets().subquery()
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
                yield _credential_manager_reminder(user_id, cid, kinds.get(kind, kind), until, merchant_name)

    added = enqueue_committing(reminders(), now) + enqueue_committing(manager_reminders(), now)
    return {"due": len(due), "managers": len(manager_rows), "added": added}


def _credential_reminder(user_id: int, credential_id: int, label: str, until: date, today: date,
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


def _credential_manager_reminder(user_id: int, credential_id: int, label: str, until: date,
                                 merchant_name: str) -> Reminder:
    return Reminder(
        user_id=user_id, kind="credential_expiry", subject=f"credential:{credential_id}",
        period=f"{until.isoformat()}:d0", template_key="credential_expiry",
        title="经营户证照今日到期",
        body=f"经营户「{merchant_name}」的{label}有效期至今天（{wx_date(until)}），明天起该摊位将不再显示该证照，"
             f"请督促其办理延续。",
        page=f"pages/credentials/detail?id={credential_id}",
        wx_data={"thing1": f"{merchant_name}{label}", "time2": wx_date(until), "thing3": "今日到期，请督促经营户办理延续"})


# -- 诚信经营承诺: pledge renewal ----------------------------------------------------------------

def pledge_renewal(now: datetime | None = None) -> dict:
    """Approved pledges whose term ends within 30 days: the entity's owner, once."""
    now = now or utcnow()
    try:
        (Pledge,) = _source("app.pledges.models", "Pledge")
        (Merchant,) = _source("app.markets.models", "Merchant")
    except SourceMissing as exc:
        return _skipped("pledge_renewal", exc)
    due = db.session.execute(
        select(Pledge.id, Pledge.valid_until, Merchant.owner_id, Merchant.name)
        .join(Merchant, Merchant.id == Pledge.merchant_id)
        .where(Pledge.status == "approved", Pledge.valid_until > now,
               Pledge.valid_until <= now + timedelta(days=PLEDGE_RENEWAL_DAYS))).all()

    def reminders() -> Iterable[Reminder]:
        for pledge_id, until, owner_id, merchant_name in due:
            # valid_until is the instant it lapses; the last day in force is the local day before.
            last_day = (to_local(until) - timedelta(microseconds=1)).date()
            yield Reminder(
                user_id=owner_id, kind="pledge_renewal", subject=f"pledge:{pledge_id}",
                period=f"{last_day.isoformat()}:d30", template_key="pledge_renewal",
                title="诚信经营承诺即将到期",
                # One pledge in force or under review at a time: a new one can be signed once
                # this one lapses, so the message says when, not "before".
                body=f"{merchant_name}的诚信经营承诺有效期至 {wx_date(last_day)}，到期后摊位的诚信承诺标识"
                     f"将熄灭。届时请在小程序中重新签署，市场审核通过后标识恢复。",
                page=f"pages/pledges/detail?id={pledge_id}",
                wx_data={"thing1": "诚信经营承诺", "time2": wx_date(last_day), "thing3": "到期后请重新签署"})

    added = enqueue_committing(reminders(), now)
    return {"due": len(due), "added": added}


# -- 党员活动: activity start ---------------------------------------------------------------------

def activity_start(now: datetime | None = None) -> dict:
    """Activities starting within 24 h: each registrant (not on approved leave) at 24 h and 1 h."""
    now = now or utcnow()
    try:
        Activity, Registration, LeaveRequest = _source(
            "app.activities.models", "Activity", "Registration", "LeaveRequest")
    except SourceMissing as exc:
        return _skipped("activity_start", exc)
    on_leave = exists().where(LeaveRequest.activity_id == Registration.activity_id,
                              LeaveRequest.user_id == Registration.user_id, LeaveRequest.status == "approved")
    due = db.session.execute(
        select(Activity.id, Activity.title, Activity.type, Activity.starts_at, Activity.place_name,
               Registration.user_id)
        .join(Registration, Registration.activity_id == Activity.id)
        .where(Activity.status == "scheduled", Activity.starts_at > now,
               Activity.starts_at <= now + ACTIVITY_STAGES[-1][0], not_(on_leave))).all()

    def reminders() -> Iterable[Reminder]:
        for activity_id, title, kind, starts_at, place, user_id in due:
            stage = stage_of(starts_at - now, ACTIVITY_STAGES)
            soon = "1 小时内开始" if stage == "h1" else "明天这个时候前开始"
            where = f"，地点：{place}" if place else ""
            yield Reminder(
                user_id=user_id, kind="activity_start", subject=f"activity:{activity_id}",
                period=f"{starts_at:%Y%m%dT%H%M}:{stage}", template_key="activity_start",
                title="活动即将开始",
                body=f"您报名的{kind}「{title}」将于 {wx_time(starts_at)} 开始（{soon}）{where}。请准时参加并扫码签到。",
                page=f"pages/activities/detail?id={activity_id}",
                wx_data={"thing1": title, "time2": wx_time(starts_at), "thing3": place or kind})

    added = enqueue_committing(reminders(), now)
    return {"due": len(due), "added": added}


# -- 三会一课: the month's 主题党日, the quarter's 支部党员大会 --------------------------------------

def _month_bounds(day: date) -> tuple[date, date]:
    start = day.replace(day=1)
    following = (start + timedelta(days=32)).replace(day=1)
    return start, following


def _quarter_bounds(day: date) -> tuple[date, date]:
    start = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    following = date(start.year + (start.month + 3 > 12), (start.month + 2) % 12 + 1, 1)
    return start, following


def _branches_without(activity_type: str, start: date, end: date):
    """(org id, org name, secretary user id) of branches with no such activity in [start, end)
    (local dates), cancelled ones not counting."""
    from app.identity.models import RoleGrant

    (PartyOrg,) = _source("app.orgs.models", "PartyOrg")
    (Activity,) = _source("app.activities.models", "Activity")
    held = exists().where(Activity.org_id == PartyOrg.id, Activity.type == activity_type,
                          Activity.status != "cancelled",
                          Activity.starts_at >= local_midnight_utc(start),
                          Activity.starts_at < local_midnight_utc(end))
    return db.session.execute(
        select(PartyOrg.id, PartyOrg.name, RoleGrant.user_id)
        .join(RoleGrant, _secretaries_of(PartyOrg.id))
        .where(PartyOrg.kind.in_(BRANCH_KINDS), not_(held))).all()


def theme_day_due(now: datetime | None = None) -> dict:
    """From the 5th of a month: secretaries of branches with no 主题党日 scheduled this month."""
    now = now or utcnow()
    today = local_today(now)
    deadline = int(current_app.config.get("REMINDERS_THEME_DAY_DEADLINE", THEME_DAY_DEADLINE))
    if today.day < deadline:
        return {"due": 0, "added": 0, "note": f"not before day {deadline}"}
    start, end = _month_bounds(today)
    return _remind_branches_without(
        "theme_day_due", "主题党日", start, end, period=f"{start:%Y-%m}", now=now,
        title="本月主题党日尚未安排", what=f"{start.month}月主题党日", action="尚未安排，请尽快发布活动",
        body=lambda org_name: (f"{org_name}本月（{start.year}年{start.month}月）的主题党日还没有安排，"
                               f"请尽快在小程序中发布活动并通知党员。"))


def general_meeting_due(now: datetime | None = None) -> dict:
    """In a quarter's last month: secretaries of branches that have not held this quarter's
    支部党员大会 (none scheduled in the quarter)."""
    now = now or utcnow()
    today = local_today(now)
    if today.month % 3 != 0:
        return {"due": 0, "added": 0, "note": "not the last month of the quarter"}
    start, end = _quarter_bounds(today)
    quarter = (start.month - 1) // 3 + 1
    return _remind_branches_without(
        "general_meeting_due", "支部党员大会", start, end, period=f"{start.year}Q{quarter}", now=now,
        title="本季度支部党员大会尚未召开", what=f"第{quarter}季度支部党员大会", action="尚未召开，请在本月内安排",
        body=lambda org_name: (f"{org_name}本季度（{start.year}年第{quarter}季度）还没有召开支部党员大会，"
                               f"请在本月内安排。"))


def _remind_branches_without(kind: str, activity_type: str, start, end, *, period: str, now: datetime,
                             title: str, what: str, action: str, body) -> dict:
    """Remind the secretary of every branch with no `activity_type` scheduled in [start, end)."""
    try:
        due = _branches_without(activity_type, start, end)
    except SourceMissing as exc:
        return _skipped(kind, exc)
    added = enqueue_committing((Reminder(
        user_id=user_id, kind=kind, subject=f"org:{org_id}", period=period,
        template_key="branch_duty", title=title, body=body(org_name),
        page=f"pages/orgs/detail?id={org_id}",
        wx_data={"thing1": what, "thing2": org_name, "thing3": action})
        for org_id, org_name, user_id in due), now)
    return {"due": len(due), "added": added}


# -- 待审核汇总: daily digest to market managers ----------------------------------------------------

def review_digest(now: datetime | None = None) -> dict:
    """Each market manager with something waiting: pending stall claims, credentials and pledges
    of their market, one message a day."""
    now = now or utcnow()
    counts: dict[int, dict[str, int]] = {}

    def tally(label: str, rows) -> None:
        for market_id, n in rows:
            counts.setdefault(int(market_id), {"claims": 0, "credentials": 0, "pledges": 0})[label] = n

    try:
        Stall, StallClaim, Market = _source("app.markets.models", "Stall", "StallClaim", "Market")
        (Credential,) = _source("app.credentials.models", "Credential")
        (Pledge,) = _source("app.pledges.models", "Pledge")
    except SourceMissing as exc:
        return _skipped("review_digest", exc)
    tally("claims", db.session.execute(
        select(Stall.market_id, func.count(StallClaim.id)).join(Stall, Stall.id == StallClaim.stall_id)
        .where(StallClaim.status == "pending").group_by(Stall.market_id)))
    held = select(Stall.market_id, Stall.merchant_id).where(Stall.merchant_id.is_not(None)).distinct().subquery()
    tally("credentials", db.session.execute(
        select(held.c.market_id, func.count(Credential.id)).join(held, held.c.merchant_id == Credential.merchant_id)
        .where(Credential.status == "pending").group_by(held.c.market_id)))
    tally("pledges", db.session.execute(
        select(Pledge.market_id, func.count(Pledge.id)).where(Pledge.status == "pending").group_by(Pledge.market_id)))
    if not counts:
        return {"markets": 0, "added": 0}
    names = dict(db.session.execute(select(Market.id, Market.name).where(Market.id.in_(counts))).all())
    managers = db.session.execute(_managers_of_markets()).all()
    day = local_today(now)

    def reminders() -> Iterable[Reminder]:
        for user_id, market_key in managers:
            if not market_key.isdigit() or int(market_key) not in counts:
                continue
            market_id = int(market_key)
            c = counts[market_id]
            total = sum(c.values())
            yield Reminder(
                user_id=user_id, kind="review_digest", subject=f"market:{market_id}", period=day.isoformat(),
                template_key="review_digest", title="今日待审核事项",
                body=f"{names.get(market_id, '')}有 {total} 项待审核：摊位认领 {c['claims']} 项、"
                     f"证照 {c['credentials']} 项、诚信承诺 {c['pledges']} 项。",
                page=f"pages/review/index?market_id={market_id}",
                wx_data={"thing1": names.get(market_id, "市场"), "number2": str(total),
                         "thing3": f"认领{c['claims']} 证照{c['credentials']} 承诺{c['pledges']}"})

    added = enqueue_committing(reminders(), now)
    return {"markets": len(counts), "added": added}


# -- upkeep ----------------------------------------------------------------------------------------

def dispatch_outbox(now: datetime | None = None) -> dict:
    from app.reminders.dispatcher import dispatch

    return dispatch(now or utcnow()).as_dict()


def nightly_purge(now: datetime | None = None) -> dict:
    """Raw check-in coordinates past 30 days (R8) and idempotency keys past 24 h."""
    from app.core.idempotency import purge_expired

    now = now or utcnow()
    result = {"idempotency_keys": purge_expired(now)}
    db.session.commit()
    try:
        (purge_raw_coordinates,) = _source("app.activities.checkin", "purge_raw_coordinates")
    except SourceMissing as exc:
        log.warning("nightly purge: check-in coordinates skipped (%s)", exc)
        result["raw_coordinates"] = None
    else:
        result["raw_coordinates"] = purge_raw_coordinates(now)
        db.session.commit()
    return result


JOBS: dict[str, Callable[..., dict]] = {
    "credential_expiry": credential_expiry,
    "pledge_renewal": pledge_renewal,
    "activity_start": activity_start,
    "theme_day_due": theme_day_due,
    "general_meeting_due": general_meeting_due,
    "review_digest": review_digest,
    "dispatch": dispatch_outbox,
    "purge": nightly_purge,
}


def run_job(name: str, now: datetime | None = None) -> dict:
    """Run one job in the current app context; roll back what a failure left half-done."""
    try:
        return JOBS[name](now or utcnow())
    except Exception:
        db.session.rollback()
        raise

