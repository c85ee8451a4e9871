"""Fixed-window rate limits on the shared key-value store.

Policy (docs/operations.md): counted in Redis when it is configured, so limits hold across
every worker; while Redis is unreachable they are counted per process (each worker allows the
limit on its own), so an outage loosens them but never blocks legitimate users."""
from __future__ import annotations

from datetime import timezone

from app.core.errors import APIError
from app.core.time import utcnow
from app.extensions import kv


def enforce(name: str, subject: str, limit: int, window_seconds: int, code: str = "RATE_LIMITED") -> None:
    """Allow `limit` calls per `window_seconds` for (name, subject); the next one is a 429
    whose details say when to try again."""
    now = int(utcnow().replace(tzinfo=timezone.utc).timestamp())
    window = now // window_seconds
    count = kv.incr(f"rate:{name}:{subject}:{window}", ttl=window_seconds)
    if count > limit:
        retry_after = window_seconds - now % window_seconds
        raise APIError(code=code, details={"limit": limit, "window_seconds": window_seconds,
                                           "retry_after_seconds": retry_after})
