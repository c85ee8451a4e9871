"""Time: stored as naive UTC in the database, shown and scheduled in Asia/Shanghai.

`utcnow()` is the one clock the domain reads, so tests can pass time in (`clock.set`) instead
of sleeping."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


class _Clock:
    def __init__(self) -> None:
        self._fixed: datetime | None = None

    def now(self) -> datetime:
        """Naive UTC, the form every DateTime column stores."""
        if self._fixed is not None:
            return self._fixed
        return datetime.now(timezone.utc).replace(tzinfo=None)

    def set(self, value: datetime | None) -> None:
        """Freeze the clock (tests only). Aware values are converted to naive UTC."""
        self._fixed = to_naive_utc(value) if value is not None else None

    def advance(self, delta: timedelta) -> None:
        self._fixed = self.now() + delta


clock = _Clock()


def utcnow() -> datetime:
    return clock.now()


def to_naive_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def to_local(value: datetime) -> datetime:
    """Naive UTC -> aware Asia/Shanghai."""
    return value.replace(tzinfo=timezone.utc).astimezone(SHANGHAI)


def local_today(now: datetime | None = None) -> date:
    return to_local(now or utcnow()).date()


EARLIEST_DAY, LATEST_DAY = date(1900, 1, 1), date(9998, 12, 31)


def local_midnight_utc(day: date) -> datetime:
    """The UTC instant at which `day` starts in Asia/Shanghai. Days outside 1900–9998 (a filter
    from 0001-01-01) are taken as those bounds: no instant of this system lies beyond them, and
    the conversion must not overflow."""
    day = min(max(day, EARLIEST_DAY), LATEST_DAY)
    return to_naive_utc(datetime(day.year, day.month, day.day, tzinfo=SHANGHAI))


def end_of_local_day_utc(day: date) -> datetime:
    """The UTC instant at which `day` ends in Asia/Shanghai (a document valid until `day`
    is in force through that whole local day)."""
    return local_midnight_utc(day + timedelta(days=1))


def isoformat_local(value: datetime | None) -> str | None:
    return to_local(value).isoformat() if value else None
