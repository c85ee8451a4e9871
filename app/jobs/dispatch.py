"""Handing a queued job to the configured backend (RQ, or the embedded thread pool)."""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def backend(app) -> str:
    """"rq" or "thread": JOBS_BACKEND, where "auto" means RQ exactly when Redis is configured."""
    chosen = app.config.get("JOBS_BACKEND", "auto")
    if chosen == "auto":
        return "rq" if app.config.get("REDIS_URL") else "thread"
    return chosen


def dispatch(app, public_id: str, kind: str) -> None:
    """Hand a committed, queued job to the backend. Never raises: a job the backend did not
    take stays queued in the table, and the sweep hands it over again (rq) or the embedded pool
    finds it there (thread)."""
    try:
        if backend(app) == "rq":
            from app.jobs import rq_backend

            rq_backend.enqueue(app, public_id, kind)
        else:
            from app.jobs import embedded

            embedded.wake(app)
    except Exception as exc:
        log.warning("job %s not handed to the %s backend (stays queued, the sweep retries): %s",
                    public_id, backend(app), exc)


def start_if_embedded(app) -> bool:
    """Start this process's thread pool when jobs run in threads (no Redis); gunicorn calls it in
    each worker as the worker starts (deploy/gunicorn.conf.py, post_worker_init), so queued
    jobs run even before the worker's first request. False (nothing started) with RQ."""
    if backend(app) != "thread":
        return False
    from app.jobs import embedded

    embedded.dispatcher(app)
    return True
