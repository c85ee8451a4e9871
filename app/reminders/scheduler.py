"""The reminder scheduler process (`flask --app wsgi scheduler run`): APScheduler 3's
BlockingScheduler in Asia/Shanghai, in a process of its own (web workers never start it), run
only while this process holds the leader lock (leader.py).

A process that is not the leader waits and tries again. The leader renews its lock in a watcher
thread; if renewal fails it stops its scheduler and goes back to waiting. Jobs are idempotent
because of the outbox's dedupe key, so a short overlap of two leaders sends nothing twice.

Every job: coalesce=True (a backlog of missed runs is one run), max_instances=1, and a misfire
grace that suits it (a daily sweep still runs hours late; the minute dispatcher doesn't pile up)."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from apscheduler.events import EVENT_SCHEDULER_STARTED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from app.core.time import utcnow
from app.reminders.engine import Every, all_series
from app.reminders.heartbeat import beat, holder_name
from app.reminders.leader import DEFAULT_NAME, LeaderLock, make_leader_lock

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class ScheduledJob:
    name: str
    trigger: CronTrigger
    misfire_grace_time: int  # seconds
    description: str


def _at(app, key: str, offset_minutes: int = 0) -> tuple[int, int]:
    """'HH:MM' from the app config (config.py reads it from the environment), shifted by a few
    minutes so the morning sweeps don't start in the same second."""
    raw = app.config[key]
    hour, minute = (int(part) for part in raw.split(":", 1))
    moment = datetime(2000, 1, 1, hour, minute) + timedelta(minutes=offset_minutes)
    return moment.hour, moment.minute


def job_table(app) -> list[ScheduledJob]:
    """What runs when (local time in TIMEZONE, Asia/Shanghai by default)."""
    tz = app.config.get("TIMEZONE", "Asia/Shanghai")

    def trigger(when) -> CronTrigger:
        if isinstance(when, Every):
            return CronTrigger(minute="*" if when.minutes == 1 else f"*/{when.minutes}", timezone=tz)
        hour, minute = _at(app, when.setting, when.offset_minutes)
        return CronTrigger(hour=hour, minute=minute, timezone=tz)

    return [ScheduledJob(series.name, trigger(series.when), series.grace_seconds, series.description)
            for series in all_series().values()]


def execute(app, name: str, lock: LeaderLock | None = None, now: datetime | None = None) -> dict | None:
    """Run one job in its own app context and log its counts; a failure is logged, not raised
    (the scheduler keeps running and the next run catches up)."""
    from app.extensions import db
    from app.reminders.jobs import run_job

    if lock is not None and not lock.held:
        log.warning("reminder job %s not run: this process is not the leader", name)
        return None
    started = time.monotonic()
    with app.app_context():
        try:
            result = run_job(name, now)
        except Exception:
            log.exception("reminder job %s failed", name)
            return None
        finally:
            db.session.remove()
    log.info("reminder job %s done in %.2fs: %s", name, time.monotonic() - started, result)
    return result


def build_scheduler(app, lock: LeaderLock | None = None) -> BlockingScheduler:
    scheduler = BlockingScheduler(
        timezone=app.config.get("TIMEZONE", "Asia/Shanghai"),
        executors={"default": ThreadPoolExecutor(max_workers=3)},
        job_defaults={"coalesce": True, "max_instances": 1},
    )
    frequent = {name for name, series in all_series().items() if isinstance(series.when, Every)}
    for job in job_table(app):
        # A new leader (first start, or a standby taking over) runs the frequent series at once:
        # reminders that fell due while nobody led go out now, not at the next tick.
        first_run = {"next_run_time": datetime.now(scheduler.timezone)} if job.name in frequent else {}
        scheduler.add_job(execute, job.trigger, args=(app, job.name, lock), id=job.name, name=job.description,
                          misfire_grace_time=job.misfire_grace_time, coalesce=True, max_instances=1, **first_run)
    return scheduler


def run_scheduler(app, lock: LeaderLock | None = None, stop: threading.Event | None = None,
                  retry_seconds: float = 15.0, on_lead: Callable[[BlockingScheduler], None] | None = None,
                  name: str = DEFAULT_NAME) -> None:
    """Lead or wait to lead, until `stop` is set. Blocks. While leading, a heartbeat (`name`)
    is written at the start and at every renewal of the lock, for /readyz and /metrics."""
    lock = lock or make_leader_lock(app, name)
    stop = stop or threading.Event()
    waiting_logged = False
    while not stop.is_set():
        if not lock.acquire():
            if not waiting_logged:
                log.info("scheduler: another process is the leader (%s); retrying every %ss",
                         lock.describe(), retry_seconds)
                waiting_logged = True
            stop.wait(retry_seconds)
            continue
        waiting_logged = False
        log.info("scheduler: this process is the leader (%s)", lock.describe())
        heartbeat = _heartbeat(app, name, utcnow())
        heartbeat()
        scheduler = build_scheduler(app, lock)
        scheduler.add_listener(lambda event: _start_watcher(scheduler, lock, stop, heartbeat), EVENT_SCHEDULER_STARTED)
        try:
            if on_lead is not None:
                on_lead(scheduler)
            scheduler.start()  # returns when the watcher shuts it down
        finally:
            lock.release()
            log.info("scheduler: stopped leading")


def _heartbeat(app, name: str, leading_since: datetime) -> Callable[[], None]:
    holder = holder_name()

    def write() -> None:
        from app.extensions import db

        with app.app_context():
            try:
                beat(name, holder, leading_since)
            finally:
                db.session.remove()

    return write


def _start_watcher(scheduler: BlockingScheduler, lock: LeaderLock, stop: threading.Event,
                   heartbeat: Callable[[], None] | None = None) -> None:
    threading.Thread(target=_keep_leading, args=(scheduler, lock, stop, heartbeat), name="leader-watch",
                     daemon=True).start()


def _keep_leading(scheduler: BlockingScheduler, lock: LeaderLock, stop: threading.Event,
                  heartbeat: Callable[[], None] | None = None) -> None:
    """Renew the lock while leading, with a heartbeat after each renewal; stop the scheduler on
    shutdown or when the lock is lost."""
    while not stop.wait(lock.renew_every):
        if not lock.renew():
            log.error("scheduler: lost the leader lock; stopping jobs until it is regained")
            break
        if heartbeat is not None:
            heartbeat()
    try:
        scheduler.shutdown(wait=False)
    except Exception:  # already stopped
        pass
