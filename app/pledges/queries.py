"""Read side of pledges used by other features. Stubs until the pledges issue fills them in."""
from __future__ import annotations

from datetime import datetime


def pledge_badge_entry(merchant_id: int, now: datetime) -> dict | None:
    """The 诚信承诺 entry of the badge for an entity at `now`, or None when no pledge is in force.
    Shape: {"items": [str], "signer": str, "approved_at": iso, "valid_until": iso,
    "market": str, "changes_at": naive-UTC datetime | None (the moment this entry turns off)}."""
    return None
