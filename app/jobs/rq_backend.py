"""With Redis: jobs go through RQ. RQ carries only the public id; the row is the truth.

`flask jobs worker` runs an RQ worker (rq.Worker: each job in a forked work horse, so a job
that crashes or overruns its timeout takes only the horse down). The worker also sweeps
(app/jobs/sweep.py) at start and every JOBS_SWEEP_SECONDS, in RQ's maintenance step.

RQ's own bookkeeping is kept short (no results in Redis: the result is a file in the store);
its failed registry is not consulted: a lost horse or worker shows as a stale heartbeat."""
from __future__ import annotations

import logging
import os

from rq import Queue, Worker

log = logging.getLogger(__name__)

_worker_app = None  # the app of a `flask jobs worker` process, inherited by its work horses


def connection(app):
    """One Redis client per app and process (RQ wants bytes, not the kv store's decoded client)."""
    from redis import Redis

    cached = app.extensions.get("jobs_redis")
    if cached is not None and cached[0] == os.getpid():
        return cached[1]
    client = Redis.from_url(app.config["REDIS_URL"], socket_connect_timeout=3, socket_timeout=10)
    app.extensions["jobs_redis"] = (os.getpid(), client)
    return client


def queue(app) -> Queue:
    return Queue(app.config.get("JOBS_QUEUE", "xgz"), connection=connection(app))


def enqueue(app, public_id: str, kind: str) -> None:
    from app.jobs.registry import kind_of

    declared = kind_of(kind)
    timeout = declared.timeout_seconds if declared else 3600
    queue(app).enqueue("app.jobs.rq_backend.perform", public_id, job_timeout=timeout, result_ttl=0,
                       failure_ttl=7 * 24 * 3600, description=f"{kind} {public_id}")


def perform(public_id: str) -> str:
    """RQ's job function, in the work horse."""
    from app.extensions import db
    from app.jobs.runner import run_queued

    app = _worker_app
    if app is None:  # a worker started some other way (rq worker): build the app here
        from app import create_app

        app = create_app()
    else:
        # A forked horse must not use the pooled connections it inherited from the worker.
        with app.app_context():
            db.engine.dispose(close=False)
    return run_queued(app, public_id)


class SweepingWorker(Worker):
    """An RQ worker whose maintenance step (at start, then every maintenance_interval) also
    sweeps the jobs table."""

    flask_app = None

    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        from app.jobs.sweep import sweep

        try:
            app = self.flask_app
            sweep(app, hand_over=lambda public_id, kind: enqueue(app, public_id, kind), requeue_stranded=True)
        except Exception:  # the database is down: the next pass tries again
            log.exception("jobs sweep failed")


def run_worker(app, name: str | None = None, burst: bool = False) -> bool:
    global _worker_app
    from app.extensions import db

    _worker_app = app
    interval = max(5, int(app.config.get("JOBS_SWEEP_SECONDS", 60)))
    # A name of its own per process: after a kill, RQ keeps the old one registered for a while
    # and would refuse a restarted worker of the same name.
    name = f"{name}.{os.getpid()}" if name else None
    with app.app_context():
        db.engine.dispose()  # nothing pooled before the first fork
    worker = SweepingWorker([queue(app)], connection=connection(app), name=name,
                            maintenance_interval=interval, worker_ttl=interval + 15)
    worker.flask_app = app
    return worker.work(burst=burst, logging_level=app.config.get("LOG_LEVEL", "INFO"))
