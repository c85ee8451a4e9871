"""Running one job, the same on an RQ worker and in the embedded pool.

A run claims its row (queued -> running, one conditional UPDATE, so a job handed over twice
runs once), calls the kind's `run(ctx, **params)` in its own app context, and records the
outcome. While it runs, a ticker thread writes the heartbeat and the progress the job reports
(at most once a second, on its own connection: the job's own transactions, committed per
batch, are never committed early by a progress write, and on SQLite a job holding the write
lock only delays the ticker, never itself)."""
from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from datetime import timedelta

from sqlalchemy import select, update

from app.core.errors import APIError
from app.core.time import utcnow
from app.extensions import db
from app.jobs.errors import FAILED_MESSAGE
from app.jobs.models import Job
from app.jobs.registry import kind_of

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10  # a running job's sign of life; JOBS_LOST_AFTER_SECONDS is several of them
PROGRESS_SECONDS = 1.0  # progress reaches the table at most this often


def worker_name() -> str:
    """host:pid:random, one per run: the outcome is written only by the run that holds the job."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"[:160]


class JobContext:
    """What a job's `run` gets: its id and owner, progress reporting and the result."""

    def __init__(self, job: Job) -> None:
        self.job_id = job.id
        self.public_id = job.public_id
        self.owner_id = job.owner_id
        self.attempt = job.attempts
        self._lock = threading.Lock()
        self._progress = (job.progress_done or 0, job.progress_total, job.message)
        self._changed = False
        self.result: tuple[str, str, str, int] | None = None  # key, filename, content type, size
        # The line the finished job shows as its message ("新增 120 个，跳过 3 个"); "已完成" if unset.
        self.summary: str | None = None

    def owner(self):
        """The user who submitted the job, in this run's session (kinds re-check their access:
        a role revoked since the submit fails the job with its own refusal)."""
        from app.identity.models import User

        return db.session.get(User, self.owner_id)

    def progress(self, done: int, total: int | None = None, message: str | None = None) -> None:
        """Report progress (cheap: remembered here, written by the ticker)."""
        with self._lock:
            old_done, old_total, old_message = self._progress
            self._progress = (done, total if total is not None else old_total,
                              message if message is not None else old_message)
            self._changed = True

    def take_progress(self) -> tuple[int, int | None, str | None] | None:
        with self._lock:
            if not self._changed:
                return None
            self._changed = False
            return self._progress

    def save_result(self, data: bytes, filename: str, content_type: str, extension: str) -> None:
        """Store the job's file where photos are stored (any API host can serve it), under
        jobs/; a store that is down fails the job with its own message (STORAGE_UNAVAILABLE)."""
        from app.core.objectstore import current_store

        key = f"jobs/{self.public_id}-{self.attempt}.{extension}"
        current_store().put(key, data, content_type=content_type)
        self.result = (key, filename, content_type, len(data))


class _Ticker(threading.Thread):
    def __init__(self, app, job_id: int, worker: str, ctx: JobContext) -> None:
        super().__init__(name=f"xgz-job-ticker-{job_id}", daemon=True)
        self.app, self.job_id, self.worker, self.ctx = app, job_id, worker, ctx
        self.stopped = threading.Event()

    def run(self) -> None:
        last_beat = time.monotonic()
        while not self.stopped.wait(PROGRESS_SECONDS):
            progress = self.ctx.take_progress()
            if progress is None and time.monotonic() - last_beat < HEARTBEAT_SECONDS:
                continue
            values = {"heartbeat_at": utcnow()}
            if progress is not None:
                values.update(progress_done=progress[0], progress_total=progress[1], message=progress[2])
            try:
                with self.app.app_context(), db.engine.begin() as conn:
                    conn.execute(update(Job).where(Job.id == self.job_id, Job.worker == self.worker,
                                                   Job.status == "running").values(**values))
                last_beat = time.monotonic()
            except Exception as exc:  # a missed beat shows as an older heartbeat; the job goes on
                log.warning("job %s heartbeat not written: %s", self.job_id, type(exc).__name__)

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=30)


def claim(public_id: str, worker: str) -> bool:
    """queued -> running for this run; False when it is not queued (done, or taken by another)."""
    now = utcnow()
    claimed = db.session.execute(
        update(Job).where(Job.public_id == public_id, Job.status == "queued")
        .values(status="running", worker=worker, started_at=now, heartbeat_at=now, progress_done=0,
                message="正在处理")).rowcount
    db.session.commit()
    return claimed == 1


def claim_next(worker: str) -> str | None:
    """The oldest queued job, claimed for this run (the embedded pool's queue is the table)."""
    for _ in range(5):  # another process may take the one we saw first
        public_id = db.session.scalar(select(Job.public_id).where(Job.status == "queued")
                                      .order_by(Job.id).limit(1))
        db.session.rollback()
        if public_id is None:
            return None
        if claim(public_id, worker):
            return public_id
    return None


def execute(app, public_id: str, worker: str) -> str:
    """Run a job this run has claimed; returns its final status. Never raises."""
    with app.app_context():
        job = db.session.scalar(select(Job).where(Job.public_id == public_id, Job.worker == worker))
        if job is None or job.status != "running":
            return "lost"
        kind = kind_of(job.kind)
        ctx = JobContext(job)
        params = dict(job.params or {})
        db.session.commit()
        ticker = _Ticker(app, job.id, worker, ctx)
        ticker.start()
        started = time.monotonic()
        try:
            if kind is None:
                raise RuntimeError(f"unknown job kind {job.kind!r}")
            kind.run(ctx, **params)
            db.session.commit()
            outcome = ("succeeded", None, None)
        except APIError as exc:  # a refusal the user can act on, in its own words
            db.session.rollback()
            log.info("job %s (%s) refused: %s", public_id, job.kind, exc.code)
            outcome = ("failed", exc.code, exc.message)
        except Exception:
            db.session.rollback()
            log.exception("job %s (%s) failed", public_id, job.kind)
            outcome = ("failed", "JOB_FAILED", FAILED_MESSAGE)
        finally:
            ticker.stop()
        return _finish(app, job.id, public_id, worker, ctx, outcome, time.monotonic() - started)


def _finish(app, job_id: int, public_id: str, worker: str, ctx: JobContext, outcome, seconds: float) -> str:
    status, code, message = outcome
    now = utcnow()
    done, total, _ = ctx._progress
    values = {"status": status, "finished_at": now, "heartbeat_at": now, "error_code": code,
              "error_message": message, "progress_done": done, "progress_total": total}
    if status == "succeeded":
        hours = float(app.config.get("JOBS_RESULT_TTL_HOURS", 24))
        values.update(message=(ctx.summary or "已完成")[:200], expires_at=now + timedelta(hours=hours))
        if ctx.result:
            key, filename, content_type, size = ctx.result
            values.update(result_key=key, result_filename=filename, result_content_type=content_type,
                          result_size=size)
    else:
        values.update(message="失败")
    try:
        written = db.session.execute(update(Job).where(Job.id == job_id, Job.worker == worker,
                                                       Job.status == "running").values(**values)).rowcount
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("job %s: outcome %s not recorded (the sweep will treat it as lost)", public_id, status)
        return "lost"
    if not written:
        # The sweep declared this run lost meanwhile (a heartbeat gap) and the job was handed on:
        # the other run's outcome counts; this run's file is not referenced.
        log.warning("job %s finished after it was declared lost; outcome %s dropped", public_id, status)
        _drop_object(ctx.result[0] if ctx.result else None)
        return "lost"
    log.info("job %s %s in %.1f s", public_id, status, seconds)
    return status


def _drop_object(key: str | None) -> None:
    if not key:
        return
    from app.core.objectstore import current_store

    try:
        current_store().delete(key)
    except Exception as exc:
        log.warning("job result %s not deleted: %s", key, exc)


def run_queued(app, public_id: str, worker: str | None = None) -> str:
    """Claim and run (RQ's entry point): a job no longer queued is skipped."""
    worker = worker or worker_name()
    with app.app_context():
        if not claim(public_id, worker):
            log.info("job %s is not queued any more; skipped", public_id)
            return "skipped"
    return execute(app, public_id, worker)
