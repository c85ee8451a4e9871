"""Fixed-window rate limits on the shared key-value store.

Policy (docs/operations.md): counted in Redis when it is configured, so limits hold across
every worker; while Redis is unreachable they are counted per process (each worker allows the
limit on its own), so an outage loosens them but never blocks legitimate users.

Two shapes: `enforce` counts every call; `refuse_if_spent` + `spend` count only the calls that
went wrong (refused check-in scans), so honest bursts are never limited and junk is."""
from __future__ import annotations

from datetime import timezone

from app.core.errors import APIError
from app.core.time import utcnow
from app.extensions import kv


def _window(name: str, subject: str, window_seconds: int) -> tuple[str, int]:
    """The counter's key for the current window and the seconds until the window ends."""
    now = int(utcnow().replace(tzinfo=timezone.utc).timestamp())
    return f"rate:{name}:{subject}:{now // window_seconds}", window_seconds - now % window_seconds


def _limited(code: str, limit: int, window_seconds: int, retry_after: int) -> APIError:
    return APIError(code=code, details={"limit": limit, "window_seconds": window_seconds,
                                        "retry_after_seconds": retry_after})


def enforce(name: str, subject: str, limit: int, window_seconds: int, code: str = "RATE_LIMITED") -> None:
    """Allow `limit` calls per `window_seconds` for (name, subject); the next one is a 429
    whose details (and Retry-After header) say when to try again."""
    key, retry_after = _window(name, subject, window_seconds)
    if kv.incr(key, ttl=window_seconds) > limit:
        raise _limited(code, limit, window_seconds, retry_after)


def refuse_if_spent(name: str, subject: str, limit: int, window_seconds: int, code: str = "RATE_LIMITED") -> None:
    """429 when `limit` failures were already spent in this window (see `spend`)."""
    key, retry_after = _window(name, subject, window_seconds)
    if int(kv.get(key) or 0) >= limit:
        raise _limited(code, limit, window_seconds, retry_after)


def spend(name: str, subject: str, window_seconds: int) -> None:
    key, _ = _window(name, subject, window_seconds)
    kv.incr(key, ttl=window_seconds)
