"""Read side of credentials used by other features. Stubs until the stalls/credentials issue fills them in."""
from __future__ import annotations

from datetime import datetime


def shown_counts_by_market(market_ids: list[int], now: datetime) -> dict[int, dict[str, int]]:
    """{market_id: {"licences_shown": n, "permits_shown": n}}: stalls of each market whose licence
    is verified and in force at `now`, and verified permits in force at `now` on those stalls."""
    return {market_id: {"licences_shown": 0, "permits_shown": 0} for market_id in market_ids}
