"""What the reminders add to /metrics and /readyz (registered into core by create_app).

Both read the database when asked, so every worker and host reports the same numbers:
- the outbox: rows waiting (pending), being sent (sending), given up (failed), and the due
  backlog — pending rows whose next attempt has come — with the age of the oldest of them;
- the scheduler: whether a leader's heartbeat is fresh, its age, and since when it leads.

Every query here goes through an index: notifications' (status, next_attempt_at), and the
heartbeat's primary key. 'sent' and 'no_consent' rows, which only grow, are never counted."""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from app.core import health, metrics
from app.core.time import utcnow
from app.extensions import db
from app.reminders.heartbeat import STALE_AFTER, last_heartbeat
from app.reminders.leader import DEFAULT_NAME
from app.reminders.models import Notification

BACKLOG_STATUSES = ("pending", "sending", "failed")
# Seconds a due reminder may wait before readiness says the outbox lags (the dispatcher runs
# every minute and retries back off for minutes, so a few minutes late is normal).
OUTBOX_LAG_AFTER = 15 * 60


def due_backlog(now: datetime) -> tuple[int, float | None]:
    """(how many pending reminders are due, seconds the oldest of them has been due)."""
    count, oldest = db.session.execute(
        select(func.count(), func.min(Notification.next_attempt_at))
        .where(Notification.status == "pending", Notification.next_attempt_at <= now)).one()
    return count, (max(0.0, (now - oldest).total_seconds()) if oldest is not None else None)


def _epoch(value: datetime) -> float:
    return (value - datetime(1970, 1, 1)).total_seconds()  # columns hold naive UTC


# -- /metrics -----------------------------------------------------------------------------------------
def outbox_metrics() -> Iterable:
    now = utcnow()
    counts = dict(db.session.execute(
        select(Notification.status, func.count()).where(Notification.status.in_(BACKLOG_STATUSES))
        .group_by(Notification.status)).all())
    by_status = GaugeMetricFamily("xgz_reminder_outbox_messages",
                                  "Reminders in the outbox by status (pending, sending, failed)", labels=["status"])
    for status in BACKLOG_STATUSES:
        by_status.add_metric([status], counts.get(status, 0))
    due, oldest = due_backlog(now)
    yield by_status
    yield GaugeMetricFamily("xgz_reminder_outbox_due", "Pending reminders whose send is due now", value=due)
    yield GaugeMetricFamily("xgz_reminder_outbox_oldest_due_seconds",
                            "Seconds the oldest due reminder has waited (0 when none)", value=oldest or 0)


def scheduler_metrics() -> Iterable:
    heartbeat = last_heartbeat(DEFAULT_NAME)
    yield GaugeMetricFamily("xgz_scheduler_leader_up", "1 while a scheduler leader's heartbeat is fresh",
                            value=1 if heartbeat is not None and not heartbeat.stale else 0)
    if heartbeat is not None:
        yield GaugeMetricFamily("xgz_scheduler_heartbeat_age_seconds",
                                "Seconds since the scheduler leader's last heartbeat", value=heartbeat.age_seconds)
        yield GaugeMetricFamily("xgz_scheduler_leading_since_seconds",
                                "Unix time at which the current (or last) leader began leading",
                                value=_epoch(heartbeat.leading_since))


# -- /readyz ------------------------------------------------------------------------------------------
def scheduler_readiness() -> tuple[str, dict]:
    heartbeat = last_heartbeat(DEFAULT_NAME)
    if heartbeat is None:
        return "absent", {"heartbeat_age_seconds": None, "holder": None, "stale_after_seconds": STALE_AFTER}
    return ("stale" if heartbeat.stale else "ok"), {
        "heartbeat_age_seconds": round(heartbeat.age_seconds, 1), "holder": heartbeat.holder,
        "leading_since": heartbeat.leading_since.isoformat() + "Z", "stale_after_seconds": STALE_AFTER}


def outbox_readiness() -> tuple[str, dict]:
    due, oldest = due_backlog(utcnow())
    state = "lagging" if oldest is not None and oldest > OUTBOX_LAG_AFTER else "ok"
    return state, {"due": due, "oldest_due_seconds": round(oldest, 1) if oldest is not None else None}


def install() -> None:
    metrics.scrape_source("reminder_outbox", outbox_metrics)
    metrics.scrape_source("scheduler", scheduler_metrics)
    health.readiness_check("scheduler", scheduler_readiness)
    health.readiness_check("outbox", outbox_readiness)
