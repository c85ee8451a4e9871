"""What rider reports publish to the badge: the upheld reports of a stall not yet rectified.

They count on the badge like an upheld complaint (app.markets.badge_facts gathers both into the
stall's `upheld_complaints_at`) until the handler records the rectification (POST
/reports/{id}/rectified, which bumps the stall's badge in its transaction). A complaint counts
for UPHELD_WINDOW from when it was upheld; an unrectified report keeps counting, so its moment
is the start of the current UPHELD_WINDOW period since it was upheld: the badge's `changes_at`
falls at the period's end, and the recompute there finds it still counting."""
from __future__ import annotations

from datetime import datetime

from app.badge.compute import UPHELD_WINDOW
from app.badge.facts import provides
from app.core.reader import as_datetime, query

# Plain SQL on the badge reader's connection: this runs on every badge miss (index on stall, status).
_UNRECTIFIED_SQL = "SELECT decided_at FROM rider_reports WHERE stall_id = ? AND status = 'upheld'"


@provides("unrectified_reports")
def unrectified_reports(stall_id: int, now: datetime) -> tuple[datetime, ...]:
    return tuple(_counting_since(as_datetime(row[0]), now) for row in query(_UNRECTIFIED_SQL, (stall_id,)))


def _counting_since(upheld_at: datetime, now: datetime) -> datetime:
    if now <= upheld_at:
        return upheld_at
    periods = (now - upheld_at) // UPHELD_WINDOW
    return upheld_at + periods * UPHELD_WINDOW
