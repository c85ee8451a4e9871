"""The jobs' upkeep, run at every worker start and then every JOBS_SWEEP_SECONDS by each RQ
worker, or by the embedded pool's dispatcher: lost runs, expired results, stranded queue
entries, and finished jobs old enough to forget (rows and files).
Every change is a conditional UPDATE, so several sweepers at once (every worker runs one) act
once on each job."""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select, update

from app.core.time import utcnow
from app.extensions import db
from app.jobs.errors import INTERRUPTED_MESSAGE
from app.jobs.models import Job

log = logging.getLogger(__name__)

REQUEUE_AFTER = timedelta(minutes=15)  # a queued RQ job this old is handed to RQ again (Redis lost it?)
# A finished job's row stays this long after its result expired (failed ones: after they would
# have expired), so its owner still reads "expired" or "failed" for a while; then it goes, with
# any file it still holds (its input upload, a result the expiry pass could not delete).
PURGE_GRACE = timedelta(days=7)
FINISHED = ("succeeded", "failed", "expired")


def sweep(app, now=None, hand_over=None, requeue_stranded: bool = False) -> dict:
    """One pass; returns counts. `hand_over(public_id, kind)` gives a re-queued job to the
    backend (RQ; the embedded pool reads its queue from the table and passes none), and
    `requeue_stranded` hands over again what has sat queued too long (RQ). Never raises on a
    single job's trouble."""
    now = now or utcnow()
    counts = {"requeued": 0, "interrupted": 0, "expired": 0, "redispatched": 0, "purged": 0}
    with app.app_context():
        lost_after = timedelta(seconds=int(app.config.get("JOBS_LOST_AFTER_SECONDS", 120)))
        _lost(now, now - lost_after, counts, hand_over)
        _expired(now, counts)
        ttl = timedelta(hours=float(app.config.get("JOBS_RESULT_TTL_HOURS", 24)))
        _purge(now - ttl - PURGE_GRACE, counts)
        if requeue_stranded and hand_over is not None:
            _stranded(now, counts, hand_over)
    if any(counts.values()):
        log.info("jobs sweep: %s", counts)
    return counts


def _lost(now, stale_before, counts, hand_over) -> None:
    """A running job whose heartbeat stopped: its worker died (killed, out of memory, host
    down). Re-queued once; lost a second time, it fails with a reason saying so."""
    rows = db.session.execute(select(Job.id, Job.public_id, Job.kind, Job.interruptions, Job.heartbeat_at)
                              .where(Job.status == "running", Job.heartbeat_at < stale_before)).all()
    for job_id, public_id, kind, interruptions, beat in rows:
        same = (Job.id == job_id, Job.status == "running", Job.heartbeat_at == beat)
        if interruptions < 1:
            changed = db.session.execute(update(Job).where(*same).values(
                status="queued", interruptions=interruptions + 1, worker=None, heartbeat_at=now,
                message="执行进程中断，已自动重新排队")).rowcount
            db.session.commit()
            if changed:
                log.warning("job %s (%s): worker lost (last heartbeat %s); re-queued once", public_id, kind, beat)
                counts["requeued"] += 1
                _hand_over(hand_over, public_id, kind)
        else:
            changed = db.session.execute(update(Job).where(*same).values(
                status="failed", interruptions=interruptions + 1, finished_at=now, heartbeat_at=now,
                error_code="JOB_INTERRUPTED", error_message=INTERRUPTED_MESSAGE, message="失败")).rowcount
            db.session.commit()
            if changed:
                log.error("job %s (%s): worker lost again (last heartbeat %s); failed", public_id, kind, beat)
                counts["interrupted"] += 1


def _expired(now, counts) -> None:
    """Results past JOBS_RESULT_TTL_HOURS: the file is deleted, then the job reads expired. A
    store that is down leaves the job as it is for the next pass (its download already answers
    410 by the time: services.shown_status)."""
    from app.core.objectstore import current_store

    rows = db.session.execute(select(Job.id, Job.public_id, Job.result_key)
                              .where(Job.status == "succeeded", Job.expires_at <= now).limit(500)).all()
    db.session.rollback()
    if not rows:
        return
    store = current_store()
    for job_id, public_id, key in rows:
        try:
            if key:
                store.delete(key)
        except Exception as exc:
            log.warning("job %s: expired result %s not deleted yet: %s", public_id, key, exc)
            continue
        counts["expired"] += db.session.execute(update(Job).where(Job.id == job_id, Job.status == "succeeded")
                                                .values(status="expired", result_key=None)).rowcount
        db.session.commit()


def _purge(finished_before, counts) -> None:
    """Finished jobs older than their result's life plus PURGE_GRACE: their files are deleted,
    then their rows (a store that is down keeps the row for the next pass, so no file is left
    without a row that names it)."""
    from app.core.objectstore import current_store
    from app.jobs.uploads import INPUT_PARAM

    rows = db.session.execute(select(Job.id, Job.public_id, Job.result_key, Job.params)
                              .where(Job.status.in_(FINISHED), Job.finished_at < finished_before)
                              .order_by(Job.id).limit(500)).all()
    db.session.rollback()
    if not rows:
        return
    store = current_store()
    for job_id, public_id, result_key, params in rows:
        keys = [key for key in (result_key, (params or {}).get(INPUT_PARAM)) if key]
        try:
            for key in keys:
                store.delete(key)
        except Exception as exc:
            log.warning("job %s: files %s not deleted yet, row kept: %s", public_id, keys, exc)
            continue
        counts["purged"] += db.session.execute(Job.__table__.delete().where(
            Job.id == job_id, Job.status.in_(FINISHED), Job.finished_at < finished_before)).rowcount
        db.session.commit()


def _stranded(now, counts, hand_over) -> None:
    """RQ only: a job queued long ago that no worker took (Redis restarted without its data, or
    the enqueue itself failed) is handed to RQ again; a duplicate in RQ is harmless, the claim
    runs it once. The embedded pool reads its queue from the table and needs none of this."""
    rows = db.session.execute(select(Job.id, Job.public_id, Job.kind, Job.heartbeat_at)
                              .where(Job.status == "queued", Job.heartbeat_at < now - REQUEUE_AFTER)
                              .limit(500)).all()
    for job_id, public_id, kind, beat in rows:
        changed = db.session.execute(update(Job).where(Job.id == job_id, Job.status == "queued",
                                                       Job.heartbeat_at == beat).values(heartbeat_at=now)).rowcount
        db.session.commit()
        if changed:
            counts["redispatched"] += 1
            _hand_over(hand_over, public_id, kind)


def _hand_over(hand_over, public_id: str, kind: str) -> None:
    if hand_over is None:
        return
    try:
        hand_over(public_id, kind)
    except Exception as exc:  # stays queued; the stranded pass hands it over again
        log.warning("job %s not handed over: %s", public_id, exc)
