"""Read side of pledges used by other features (the public badge)."""
from __future__ import annotations

from datetime import datetime, timedelta

from app.badge.facts import provides
from app.core.time import isoformat_local, to_local
from app.identity.services import surname_only


def last_local_day(valid_until: datetime | None) -> str | None:
    """valid_until is the exclusive end (local midnight after the last day)."""
    if valid_until is None:
        return None
    return (to_local(valid_until) - timedelta(microseconds=1)).date().isoformat()


# Runs on every badge cache miss: plain SQL on the badge reader's connection (committed data, no
# ORM statement building nor session checkout), the same condition as models.in_force_clause.
_BADGE_ENTRY_SQL = (
    "SELECT p.title, p.items, p.extra_commitments, p.signer_name, p.valid_from, p.valid_until, mk.name "
    "FROM pledges p JOIN markets mk ON mk.id = p.market_id "
    "WHERE p.merchant_id = ? AND p.status = 'approved' AND p.valid_from <= ? AND p.valid_until > ? "
    "ORDER BY p.valid_from DESC LIMIT 1")


@provides("pledge")
def pledge_badge_entry(merchant_id: int, now: datetime) -> dict | None:
    """The 诚信承诺 entry of the badge for an entity at `now`, or None when no pledge is in force.
    Shape: {"items": [str], "signer": str, "approved_at": iso, "valid_until": iso,
    "market": str, "changes_at": naive-UTC datetime | None (the moment this entry turns off)}.
    Also "title", "valid_through" (the last local day in force, YYYY-MM-DD) and
    "extra_commitments" (str | None; passed the content check when signed).

    One indexed query of committed data: it runs on every badge cache miss."""
    from app.core.reader import as_datetime, as_json, query, sql_time

    moment = sql_time(now)
    rows = query(_BADGE_ENTRY_SQL, (merchant_id, moment, moment))
    if not rows:
        return None
    title, items, extra, signer, valid_from, valid_until, market_name = rows[0]
    valid_from, valid_until = as_datetime(valid_from), as_datetime(valid_until)
    return {
        "title": title,
        "items": list(as_json(items)),
        "extra_commitments": extra,
        "signer": surname_only(signer),
        "approved_at": isoformat_local(valid_from),
        "valid_until": isoformat_local(valid_until),
        "valid_through": last_local_day(valid_until),
        "market": market_name,
        "changes_at": valid_until,
    }
