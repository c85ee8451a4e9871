"""Scheduled work of the coverage figures."""
from __future__ import annotations

from datetime import datetime

from app.core.time import utcnow
from app.extensions import db
from app.reminders.engine import Every, reminder_series


@reminder_series("coverage_refresh", when=Every(minutes=5), grace_seconds=240,
                 description="统计汇总到期重算（证照、承诺生效或到期）")
def refresh_coverage(now: datetime | None = None) -> dict:
    """Store the roll-ups time has changed, ahead of the reads that would correct them."""
    from app.stats.rollups import refresh_due

    return refresh_due(db.session(), now or utcnow())
