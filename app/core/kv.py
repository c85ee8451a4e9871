"""Small shared key-value store: Redis when REDIS_URL is set, an in-process dict otherwise.

Redis is an accelerator here, never the only copy of anything: when it fails mid-run every
call degrades to the local store (and logs once per outage), so the database keeps answering.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from contextlib import contextmanager
from typing import Iterator

log = logging.getLogger(__name__)
REDIS_RETRY_SECONDS = 2.0  # while Redis is down, try it again at most this often


class _LocalStore:
    def __init__(self) -> None:
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._lock = threading.RLock()

    def _alive(self, key: str) -> tuple[bytes, float | None] | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] is not None and item[1] <= time.monotonic():
            self._data.pop(key, None)
            return None
        return item

    def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._alive(key)
            return item[0] if item else None

    def set(self, key: str, value: bytes, ttl: float | None = None, nx: bool = False) -> bool:
        with self._lock:
            if nx and self._alive(key) is not None:
                return False
            self._data[key] = (value, time.monotonic() + ttl if ttl else None)
            return True

    def delete(self, key: str, if_value: bytes | None = None) -> bool:
        with self._lock:
            item = self._alive(key)
            if item is None or (if_value is not None and item[0] != if_value):
                return False
            self._data.pop(key, None)
            return True

    def incr(self, key: str, ttl: float | None = None) -> int:
        with self._lock:
            item = self._alive(key)
            value = int(item[0]) + 1 if item else 1
            expiry = item[1] if item else (time.monotonic() + ttl if ttl else None)
            self._data[key] = (str(value).encode(), expiry)
            return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


# Lua: delete the key only if it still holds our token (a checked release).
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class KeyValueStore:
    """The extension object: resolves to the current app's store (so two apps in one process,
    as in tests, keep separate Redis connections and local fallbacks)."""

    def __init__(self) -> None:
        object.__setattr__(self, "_default", Store(None))

    def init_app(self, app) -> None:
        store = Store(app.config.get("REDIS_URL"))
        app.extensions["kv"] = store
        object.__setattr__(self, "_default", store)

    def _current(self) -> "Store":
        from flask import current_app, has_app_context

        if has_app_context():
            store = current_app.extensions.get("kv")
            if store is not None:
                return store
        return self._default

    def __getattr__(self, name: str):
        return getattr(self._current(), name)

    def __setattr__(self, name: str, value) -> None:
        setattr(self._current(), name, value)


class Store:
    def __init__(self, url: str | None) -> None:
        self.local = _LocalStore()
        self.redis = None
        self.prefix = "xgz:"
        self._down_since: float | None = None
        self._retry_at = 0.0
        if url:
            import redis

            self.redis = redis.Redis.from_url(
                url, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=30
            )

    @property
    def shared(self) -> bool:
        """True when values are visible to every process (Redis configured)."""
        return self.redis is not None

    def _redis_call(self, fn, fallback):
        if self.redis is None:
            return fallback()
        # Circuit breaker: while Redis is known down, don't pay a connect timeout per call.
        if self._down_since is not None and time.monotonic() - self._retry_at < 0:
            return fallback()
        try:
            result = fn(self.redis)
        except Exception as exc:  # redis down, timeout, reset: degrade, never fail the request
            if self._down_since is None:
                log.warning("redis unavailable, using in-process fallback: %s", type(exc).__name__)
                self._down_since = time.monotonic()
            self._retry_at = time.monotonic() + REDIS_RETRY_SECONDS
            return fallback()
        if self._down_since is not None:
            log.info("redis is back")
            self._down_since = None
        return result

    def ping(self) -> bool:
        """A direct probe (bypasses the circuit breaker) for readiness checks."""
        if self.redis is None:
            return True
        try:
            return bool(self.redis.ping())
        except Exception:
            return False

    def get(self, key: str) -> bytes | None:
        k = self.prefix + key
        return self._redis_call(lambda r: r.get(k), lambda: self.local.get(k))

    def set(self, key: str, value: bytes | str, ttl: float | None = None, nx: bool = False) -> bool:
        k = self.prefix + key
        data = value.encode() if isinstance(value, str) else value
        px = int(ttl * 1000) if ttl else None
        return bool(self._redis_call(
            lambda r: r.set(k, data, px=px, nx=nx), lambda: self.local.set(k, data, ttl, nx)
        ))

    def delete(self, key: str) -> None:
        k = self.prefix + key
        self._redis_call(lambda r: r.delete(k), lambda: self.local.delete(k))

    def incr(self, key: str, ttl: float | None = None) -> int:
        k = self.prefix + key

        def on_redis(r):
            pipe = r.pipeline()
            pipe.incr(k)
            if ttl:
                pipe.expire(k, int(ttl), nx=True)
            return pipe.execute()[0]

        return int(self._redis_call(on_redis, lambda: self.local.incr(k, ttl)))

    @contextmanager
    def lock(self, name: str, ttl: float = 10.0, wait: float = 10.0) -> Iterator[bool]:
        """Mutual exclusion across processes when Redis is configured (SET NX PX + checked
        release), across threads otherwise. Yields whether the lock was obtained in time."""
        key = "lock:" + name
        token = uuid.uuid4().hex.encode()
        deadline = time.monotonic() + wait
        got = False
        while True:
            got = self.set(key, token, ttl=ttl, nx=True)
            if got or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        try:
            yield got
        finally:
            if got:
                self.release(key, token)

    def release(self, key: str, token: bytes) -> bool:
        k = self.prefix + key
        return bool(self._redis_call(
            lambda r: r.eval(_RELEASE, 1, k, token), lambda: self.local.delete(k, if_value=token)
        ))
