"""One scheduler leads at a time. The lock keeps doubled work away; correctness does not rest on
it (the outbox's unique key and the dispatcher's claim fence do that), so a short overlap after
a network partition costs nothing but a duplicate sweep that inserts nothing.

- Redis configured: SET key token NX PX ttl, renewed with a Lua "extend if still mine", released
  with a Lua "delete if still mine". Never the in-process fallback: two processes each holding
  a private lock would both lead.
- PostgreSQL without Redis: pg_try_advisory_lock on a dedicated connection (no pool: closing it
  is what releases the lock, and a dead process's lock dies with its connection).
- SQLite: one machine, so an fcntl lock on a file under instance/.
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

DEFAULT_NAME = "reminder-scheduler"

_EXTEND = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
           "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end")
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class LeaderLock:
    kind = "none"
    held = False
    # Seconds between renewals (a third of the lease, so two can fail before it lapses).
    renew_every = 10.0

    def acquire(self) -> bool:
        raise NotImplementedError

    def renew(self) -> bool:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        return self.kind


class RedisLeaderLock(LeaderLock):
    kind = "redis"

    def __init__(self, redis_client, key: str, ttl: float = 30.0) -> None:
        self.redis = redis_client
        self.key = key
        self.ttl_ms = int(ttl * 1000)
        self.renew_every = ttl / 3
        self.token = uuid.uuid4().hex

    def acquire(self) -> bool:
        try:
            self.held = bool(self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))
        except Exception as exc:  # Redis down: nobody can prove leadership, so don't lead
            log.warning("leader lock: redis unavailable (%s)", type(exc).__name__)
            self.held = False
        return self.held

    def renew(self) -> bool:
        try:
            self.held = bool(self.redis.eval(_EXTEND, 1, self.key, self.token, self.ttl_ms))
        except Exception as exc:
            log.warning("leader lock: renewal failed (%s)", type(exc).__name__)
            self.held = False
        return self.held

    def release(self) -> None:
        if self.held:
            try:
                self.redis.eval(_RELEASE, 1, self.key, self.token)
            except Exception:
                pass  # it expires by itself
        self.held = False

    def describe(self) -> str:
        return f"redis {self.key}"


class PostgresLeaderLock(LeaderLock):
    kind = "postgresql"

    def __init__(self, url: str, name: str, renew_every: float = 10.0) -> None:
        self.engine = create_engine(url, poolclass=NullPool)
        self.key = advisory_key(name)
        self.conn = None
        self.renew_every = renew_every

    def acquire(self) -> bool:
        try:
            if self.conn is None:
                self.conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self.held = bool(self.conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
        except Exception as exc:
            log.warning("leader lock: postgresql unavailable (%s)", type(exc).__name__)
            self._drop()
        if not self.held:
            self._drop()
        return self.held

    def renew(self) -> bool:
        """The lock lives as long as its session: a connection that still answers still holds it
        (a Connection never reconnects silently, so an answer means the same session)."""
        try:
            self.held = self.conn is not None and self.conn.execute(text("SELECT 1")).scalar() == 1
        except Exception as exc:
            log.warning("leader lock: connection lost (%s)", type(exc).__name__)
            self._drop()
        return self.held

    def release(self) -> None:
        if self.conn is not None and self.held:
            try:
                self.conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            except Exception:
                pass
        self._drop()

    def _drop(self) -> None:
        self.held = False
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None

    def describe(self) -> str:
        return f"postgresql advisory lock {self.key}"


class FileLeaderLock(LeaderLock):
    kind = "file"

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None
        self.renew_every = 10.0

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            self.held = False
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd, self.held = fd, True
        return True

    def renew(self) -> bool:
        return self.held  # the kernel holds it until we close the file or die

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
        self.fd, self.held = None, False

    def describe(self) -> str:
        return f"file {self.path}"


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock from a readable name."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def make_leader_lock(app, name: str = DEFAULT_NAME) -> LeaderLock:
    """The lock that suits the configured services (see the module docstring)."""
    store = app.extensions.get("kv")
    if store is not None and getattr(store, "redis", None) is not None:
        # The lease bounds how long a dead leader blocks its standby (SIGKILL, power loss); a
        # clean stop releases at once. Renewal every third of it survives two missed renewals.
        return RedisLeaderLock(store.redis, f"{store.prefix}leader:{name}",
                               ttl=float(app.config.get("SCHEDULER_LEASE_SECONDS", 30)))
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("postgresql"):
        return PostgresLeaderLock(url, name)
    return FileLeaderLock(os.path.join(app.config["INSTANCE_DIR"], f"{name}.lock"))
