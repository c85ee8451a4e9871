"""Running the collected reminder series (app.reminders.engine): by name, in the current app
context, each taking `now` (naive UTC, default utcnow()) so tests pass time in."""
from __future__ import annotations

from datetime import datetime

from app.core.time import utcnow
from app.extensions import db
from app.reminders.engine import all_series


def job_names() -> list[str]:
    return list(all_series())


def run_job(name: str, now: datetime | None = None) -> dict:
    """Run one series; roll back what a failure left half-done."""
    try:
        return all_series()[name].run(now or utcnow())
    except Exception:
        db.session.rollback()
        raise
