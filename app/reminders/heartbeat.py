"""The scheduler leader's heartbeat (`scheduler_heartbeats`): written by the leader when it
starts leading and at every renewal of its lock, read by /readyz and /metrics on any host.

A heartbeat older than STALE_AFTER means no scheduler is leading: jobs (sweeps, the minute
dispatcher) are not running. The API serves on regardless, so readiness only degrades."""
from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from app.core.time import utcnow
from app.extensions import db
from app.reminders.models import SchedulerHeartbeat

log = logging.getLogger(__name__)

# Seconds; the leader beats every ~10 s (LeaderLock.renew_every), so this is several missed beats.
STALE_AFTER = 60


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:128]


def beat(name: str, holder: str, leading_since: datetime, now: datetime | None = None) -> None:
    """Upsert this leader's row and commit (in an app context). Never raises: a missed beat
    shows as an older heartbeat, and leading goes on."""
    now = now or utcnow()
    values = {"holder": holder, "beat_at": now, "leading_since": leading_since}
    try:
        if db.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        db.session.execute(insert(SchedulerHeartbeat).values(name=name, **values)
                           .on_conflict_do_update(index_elements=["name"], set_=values))
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        log.warning("scheduler heartbeat not written: %s", type(exc).__name__)


@dataclass(frozen=True)
class Heartbeat:
    holder: str
    beat_at: datetime
    leading_since: datetime
    age_seconds: float

    @property
    def stale(self) -> bool:
        return self.age_seconds > STALE_AFTER


def last_heartbeat(name: str, now: datetime | None = None) -> Heartbeat | None:
    """The latest heartbeat of the scheduler `name` (one primary-key read), or None if no
    scheduler has ever led."""
    row = db.session.execute(select(SchedulerHeartbeat.holder, SchedulerHeartbeat.beat_at,
                                    SchedulerHeartbeat.leading_since)
                             .where(SchedulerHeartbeat.name == name)).first()
    if row is None:
        return None
    now = now or utcnow()
    return Heartbeat(row.holder, row.beat_at, row.leading_since, max(0.0, (now - row.beat_at).total_seconds()))
