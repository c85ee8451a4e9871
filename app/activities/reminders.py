"""Reminder series of 党员活动 and 三会一课: an activity about to start, a month without its
主题党日, a quarter without its 支部党员大会; and the nightly purge of raw coordinates."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Iterable

from flask import current_app
from sqlalchemy import exists, not_, select

from app.activities.models import Activity, LeaveRequest, Registration
from app.core.time import local_midnight_utc, local_today, utcnow
from app.extensions import db
from app.identity.models import RoleGrant
from app.orgs.models import PartyOrg
from app.reminders.engine import Daily, Every, reminder_series, secretaries_of, stage_of
from app.reminders.outbox import Reminder, enqueue_committing, wx_time

ACTIVITY_STAGES = ((timedelta(hours=1), "h1"), (timedelta(hours=24), "h24"))
THEME_DAY_DEADLINE = 5  # 主题党日 should be scheduled by the 5th of the month
BRANCH_KINDS = ("branch", "joint_branch")


@reminder_series("activity_start", when=Every(minutes=5), grace_seconds=240,
                 description="活动开始提醒（24 小时与 1 小时前）")
def activity_start(now: datetime | None = None) -> dict:
    """Activities starting within 24 h: each registrant (not on approved leave) at 24 h and 1 h."""
    now = now or utcnow()
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
    held = exists().where(Activity.org_id == PartyOrg.id, Activity.type == activity_type,
                          Activity.status != "cancelled",
                          Activity.starts_at >= local_midnight_utc(start),
                          Activity.starts_at < local_midnight_utc(end))
    return db.session.execute(
        select(PartyOrg.id, PartyOrg.name, RoleGrant.user_id)
        .join(RoleGrant, secretaries_of(PartyOrg.id))
        .where(PartyOrg.kind.in_(BRANCH_KINDS), not_(held))).all()


@reminder_series("theme_day_due", when=Daily("REMINDERS_DAILY_AT", 2), grace_seconds=6 * 3600,
                 description="本月主题党日未安排（5 日起）")
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


@reminder_series("general_meeting_due", when=Daily("REMINDERS_DAILY_AT", 3), grace_seconds=6 * 3600,
                 description="本季度支部党员大会未召开（季末月）")
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
    due = _branches_without(activity_type, start, end)
    added = enqueue_committing((Reminder(
        user_id=user_id, kind=kind, subject=f"org:{org_id}", period=period,
        template_key="branch_duty", title=title, body=body(org_name),
        page=f"pages/orgs/detail?id={org_id}",
        wx_data={"thing1": what, "thing2": org_name, "thing3": action})
        for org_id, org_name, user_id in due), now)
    return {"due": len(due), "added": added}


@reminder_series("purge_coordinates", when=Daily("REMINDERS_PURGE_AT", 1), grace_seconds=3 * 3600,
                 description="夜间清理签到原始坐标（30 天前的）")
def purge_coordinates(now: datetime | None = None) -> dict:
    """Raw check-in coordinates past 30 days (R8); distance and verdict stay."""
    from app.activities.checkin import purge_raw_coordinates

    return {"raw_coordinates": purge_raw_coordinates(now or utcnow())}
