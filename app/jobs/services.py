"""Submitting, reading and retrying jobs; handing them to the configured backend."""
from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app
from sqlalchemy import select

from app.core.errors import APIError
from app.core.ids import base62_token
from app.core.time import isoformat_local, utcnow
from app.extensions import db
from app.jobs import errors  # noqa: F401  codes registered with the service that raises them
from app.jobs.dispatch import dispatch
from app.jobs.models import STATUS_LABELS, Job
from app.jobs.registry import kind_of

log = logging.getLogger(__name__)


def submit(owner, kind: str, params: dict, scope: tuple[str, str] | None = None,
           total: int | None = None, message: str | None = None) -> Job:
    """Queue a job and commit. The same request again while the first is still queued or running
    (a double tap) gets that job back instead of a second one."""
    if kind_of(kind) is None:
        raise ValueError(f"unknown job kind {kind!r}")
    scope_type, scope_id = scope or (None, None)
    same = db.session.scalars(select(Job).where(
        Job.owner_id == owner.id, Job.kind == kind, Job.status.in_(("queued", "running")),
        Job.scope_type == scope_type, Job.scope_id == scope_id).order_by(Job.id.desc())).all()
    for job in same:
        if job.params == params:
            return job
    now = utcnow()
    job = Job(public_id=base62_token(16), kind=kind, owner_id=owner.id, scope_type=scope_type, scope_id=scope_id,
              params=params, status="queued", progress_total=total, message=message or "排队中",
              created_at=now, heartbeat_at=now)
    db.session.add(job)
    db.session.commit()
    dispatch(current_app._get_current_object(), job.public_id, kind)
    return job


def refuse_direct_if_large(count: int, limit: int, code: str, job_endpoint: str, counted: str) -> None:
    """A direct download (GET …/qr-sheet.pdf, …/pledges.xlsx) is drawn inside the request only
    up to `limit` items (`counted`: "stalls", "pledges"); beyond, 409 `code` (the feature's own
    Chinese message) points the client at the job endpoint that makes the same file."""
    if count > limit:
        raise APIError(code=code, details={counted: count, "limit": limit, "job_endpoint": job_endpoint})


def owned_job(user, public_id: str) -> Job:
    """The caller's own job, or 404 (someone else's job is answered as a missing one)."""
    job = db.session.scalar(select(Job).where(Job.public_id == public_id))
    if job is None or job.owner_id != user.id:
        raise APIError(code="JOB_NOT_FOUND")
    kind = kind_of(job.kind)
    if kind is not None and kind.may_read is not None:
        try:
            kind.may_read(user, job)
        except APIError:
            raise APIError(code="JOB_NOT_FOUND")
    return job


def shown_status(job: Job, now: datetime | None = None) -> str:
    """Succeeded past its expiry reads as expired before the sweep has deleted the file."""
    now = now or utcnow()
    if job.status == "succeeded" and job.expires_at is not None and job.expires_at <= now:
        return "expired"
    return job.status


def describe(job: Job) -> dict:
    status = shown_status(job)
    done, total = job.progress_done or 0, job.progress_total
    if status == "succeeded":
        percent = 100
    elif total:
        percent = min(99, int(done * 100 / total))
    else:
        percent = 0
    kind = kind_of(job.kind)
    answer = {
        "id": job.public_id, "kind": job.kind, "title": kind.title if kind else job.kind, "status": status,
        "status_label": STATUS_LABELS.get(status, status),
        "progress": {"done": done, "total": total, "percent": percent},
        "message": job.message, "attempts": job.attempts,
        "error": ({"code": job.error_code, "message": job.error_message} if status == "failed" else None),
        "result": None,
        "created_at": job.created_at, "started_at": job.started_at, "finished_at": job.finished_at,
    }
    if status == "succeeded" and job.result_key:
        answer["result"] = {"url": f"/api/v1/jobs/{job.public_id}/result", "filename": job.result_filename,
                            "content_type": job.result_content_type, "size": job.result_size,
                            "expires_at": job.expires_at}
    return answer


def result_of(job: Job):
    """(stored object, filename, content type) of a finished job; 409 before it is done, 410
    once its file has expired."""
    from app.core.objectstore import ObjectMissing, current_store

    status = shown_status(job)
    if status == "expired":
        raise APIError(code="JOB_RESULT_EXPIRED", details={"expired_at": isoformat_local(job.expires_at)})
    if status != "succeeded" or not job.result_key:
        raise APIError(code="JOB_NOT_FINISHED", details={"status": status})
    try:
        stored = current_store().get(job.result_key)
    except ObjectMissing:  # deleted behind our back (a manual cleanup): as good as expired
        raise APIError(code="JOB_RESULT_EXPIRED")
    return stored, job.result_filename, job.result_content_type


def retry(user, public_id: str) -> Job:
    """The owner re-queues a failed job: same kind and parameters, one more attempt."""
    job = owned_job(user, public_id)
    if job.status != "failed":
        raise APIError(code="JOB_NOT_RETRYABLE", details={"status": shown_status(job)})
    now = utcnow()
    job.status, job.attempts, job.interruptions = "queued", job.attempts + 1, 0
    job.error_code = job.error_message = None
    job.progress_done, job.message, job.worker = 0, "排队中（重试）", None
    job.started_at = job.finished_at = None
    job.heartbeat_at = now
    db.session.commit()
    dispatch(current_app._get_current_object(), job.public_id, job.kind)
    return job
