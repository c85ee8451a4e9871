"""Fixtures of the jobs tests: the embedded thread pool, or jobs held in the table for the test
to run with the real runner at a moment of its choosing (to break something first)."""
from __future__ import annotations

import os

import pytest


@pytest.fixture
def held_jobs(app):
    """Jobs stay queued (handed to an RQ queue of this test's own that no worker reads, or to
    nothing without Redis: app.jobs.dispatch keeps them queued either way); `run(job_id)` runs
    one with the runner RQ's work horse uses."""
    from app.jobs.runner import run_queued

    before = app.config["JOBS_BACKEND"], app.config["JOBS_QUEUE"]
    app.config["JOBS_BACKEND"], app.config["JOBS_QUEUE"] = "rq", f"xgz-held-{os.getpid()}"

    class Held:
        @staticmethod
        def run(public_id: str) -> str:
            return run_queued(app, public_id)

    yield Held()
    if app.config.get("REDIS_URL"):
        from app.jobs.rq_backend import queue

        queue(app).empty()
    app.config["JOBS_BACKEND"], app.config["JOBS_QUEUE"] = before
