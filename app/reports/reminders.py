"""Reminder series of rider reports: deadlines to the handlers (accept within one working day,
close within seven days), a daily digest to the regulators of what waits in their region, and
the reports waiting in each market for its managers' daily review digest."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterable

from sqlalchemy import and_, case, func, or_, select

from app.core.time import local_today, utcnow
from app.extensions import db
from app.reminders.engine import Daily, Every, managers_of_markets, pending_reviews, reminder_series
from app.reminders.outbox import Reminder, enqueue_committing, wx_time
from app.reports.models import OPEN_STATUSES, Report, ReportCategory
from app.reports.services import regulator_grants, regulators_of

CLOSE_SOON = timedelta(days=1)
STAGES = {"accept_overdue": "已超过受理时限（1 个工作日），请尽快受理",
          "close_soon": "距办结时限不足 1 天，请尽快核实办结",
          "close_overdue": "已超过办结时限（7 日），请尽快核实办结"}


def _stage(report, now: datetime) -> str | None:
    if now >= report.close_due_at:
        return "close_overdue"
    if report.status == "open" and now >= report.accept_due_at:
        return "accept_overdue"
    if now >= report.close_due_at - CLOSE_SOON:
        return "close_soon"
    return None


@reminder_series("report_deadlines", when=Every(minutes=15), grace_seconds=600,
                 description="骑手随手拍受理、办结时限提醒（超期受理、办结前 1 天、超期办结）")
def report_deadlines(now: datetime | None = None) -> dict:
    """Each handler of a report past its acceptance deadline, within a day of its closing
    deadline, or past it, once per stage: the market's managers for a report on a stall, the
    region's nearest regulators otherwise (or when the market has no manager)."""
    now = now or utcnow()
    due = db.session.execute(
        select(Report.id, Report.status, Report.market_id, Report.region_code, Report.accept_due_at,
               Report.close_due_at, ReportCategory.label)
        .join(ReportCategory, ReportCategory.code == Report.category_code)
        .where(Report.status.in_(OPEN_STATUSES), or_(
            and_(Report.status == "open", Report.accept_due_at <= now),
            Report.close_due_at <= now + CLOSE_SOON))).all()
    if not due:
        return {"due": 0, "added": 0}
    managers: dict[int, list[int]] = {}
    for user_id, market_key in db.session.execute(managers_of_markets()).all():
        if market_key.isdigit():
            managers.setdefault(int(market_key), []).append(user_id)
    grants = regulator_grants()

    def reminders() -> Iterable[Reminder]:
        for row in due:
            stage = _stage(row, now)
            if stage is None:
                continue
            handlers = managers.get(row.market_id) if row.market_id is not None else None
            for user_id in sorted(set(handlers or regulators_of(row.region_code, grants))):
                yield Reminder(
                    user_id=user_id, kind="report_deadline", subject=f"report:{row.id}", period=stage,
                    template_key="review_digest", title="骑手随手拍办理时限提醒",
                    body=f"骑手随手拍（{row.label}，编号 {row.id}）{STAGES[stage]}。办结时限：{wx_time(row.close_due_at)}。",
                    page=f"pages/reports/detail?id={row.id}",
                    wx_data={"thing1": f"随手拍：{row.label}", "number2": str(row.id), "thing3": STAGES[stage]})

    added = enqueue_committing(reminders(), now)
    return {"due": len(due), "added": added}


@reminder_series("report_digest", when=Daily("REMINDERS_DIGEST_AT", 5), grace_seconds=3 * 3600,
                 description="骑手随手拍每日汇总（待受理、办理中、超期）")
def report_digest(now: datetime | None = None) -> dict:
    """Once a day, each region's nearest regulators: how many reports in their region wait for
    acceptance, are being handled, and are overdue (on stalls handled by markets too)."""
    now = now or utcnow()
    overdue = or_(and_(Report.status == "open", Report.accept_due_at <= now), Report.close_due_at <= now)
    rows = db.session.execute(
        select(Report.region_code, func.sum(case((Report.status == "open", 1), else_=0)),
               func.count(), func.sum(case((overdue, 1), else_=0)))
        .where(Report.status.in_(OPEN_STATUSES)).group_by(Report.region_code)).all()
    grants = regulator_grants()
    counts: dict[int, list[int]] = {}
    for region_code, waiting, total, late in rows:
        for user_id in regulators_of(region_code, grants):
            mine = counts.setdefault(user_id, [0, 0, 0])
            mine[0] += int(waiting or 0)
            mine[1] += int(total or 0) - int(waiting or 0)
            mine[2] += int(late or 0)
    day = local_today(now)

    def reminders() -> Iterable[Reminder]:
        for user_id, (waiting, handling, late) in sorted(counts.items()):
            summary = f"待受理 {waiting} 件、办理中 {handling} 件，其中超期 {late} 件"
            yield Reminder(
                user_id=user_id, kind="report_digest", subject="reports", period=day.isoformat(),
                template_key="review_digest", title="骑手随手拍每日汇总", body=f"辖区骑手随手拍：{summary}。",
                page="pages/reports/index",
                wx_data={"thing1": "骑手随手拍", "number2": str(waiting + handling),
                         "thing3": f"待受理{waiting} 办理中{handling} 超期{late}"})

    added = enqueue_committing(reminders(), now)
    return {"regulators": len(counts), "added": added}


@pending_reviews("reports", "骑手随手拍", "随手拍")
def open_reports_by_market() -> list[tuple[int, int]]:
    """Reports on stalls waiting in their market (to accept or to decide)."""
    return db.session.execute(
        select(Report.market_id, func.count(Report.id))
        .where(Report.market_id.is_not(None), Report.status.in_(OPEN_STATUSES))
        .group_by(Report.market_id)).all()
