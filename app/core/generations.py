"""Change counters shared by every worker: "has this user's data changed since I cached it?"
answered without asking the database.

A feature declares which rows change which topic (`track(PointsEntry, topic="points",
by="user_id")`); when a transaction that inserted, changed or deleted such rows commits, the
topic's counter for that key is bumped. A reader takes the counter *before* it reads the data
and keeps what it read under that counter, so whatever it kept is never newer than its label:
a later commit bumps the counter and the kept answer stops matching.

Where the counters live:
- Redis when REDIS_URL is set (every host sees them);
- otherwise a small memory-mapped file in the instance folder, shared by the workers of this
  host (`make run`, one machine);
- a counter that cannot be read (Redis down) reads as None, and callers then read the database.

Every kept answer also has a short lifetime (`MAX_AGE_SECONDS` in app.core.user_reads), which
bounds the one case counters cannot see: a bump lost while Redis was unreachable.
"""
from __future__ import annotations

import fcntl
import logging
import mmap
import os
import secrets
import threading
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Callable
from pathlib import Path

from flask import current_app, has_app_context, has_request_context, request
from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

SLOTS = 1 << 16  # host file: 65,536 counters of 8 bytes (512 KiB); two keys sharing a slot only cost a miss
_PENDING = "xgz_generation_bumps"  # Session.info key: keys to bump when the transaction commits


@dataclass(frozen=True)
class Tracked:
    topic: str
    by: str  # the column whose value names the key


_tracked: dict[type, list[Tracked]] = {}
# Functions told of every row a transaction writes, by model: observe(Model, collect), where
# collect(session, row) gets the ORM object or, for Core inserts, the dict of values.
_observers: dict[type, list[Callable[[Session, Any], None]]] = {}


def track(model: type, topic: str, by: str) -> None:
    """Declare that inserting, changing or deleting a `model` row changes `topic` for the key in
    its `by` column (next to the model, at import)."""
    entries = _tracked.setdefault(model, [])
    if Tracked(topic, by) not in entries:
        entries.append(Tracked(topic, by))


def observe(model: type, collect: Callable[[Session, Any], None]) -> None:
    """Declare `collect(session, row)`, called for every `model` row a transaction inserts,
    changes or deletes, through the same paths as the change counters (flushes, Core inserts
    via app.core.db, compare-and-set decisions)."""
    entries = _observers.setdefault(model, [])
    if collect not in entries:
        entries.append(collect)


def key(topic: str, value) -> str:
    return f"{topic}:{value}"


# -- the stores ---------------------------------------------------------------------------------
class HostCounters:
    """Counters in a shared memory-mapped file: one host's workers see each other's bumps at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._map: mmap.mmap | None = None
        self._fd: int | None = None
        self._pid: int | None = None

    def _mapped(self) -> mmap.mmap:
        if self._map is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            if os.fstat(fd).st_size < SLOTS * 8:
                os.ftruncate(fd, SLOTS * 8)
            self._fd, self._map, self._pid = fd, mmap.mmap(fd, SLOTS * 8), os.getpid()
        return self._map

    @staticmethod
    def _offset(name: str) -> int:
        return (zlib.crc32(name.encode()) % SLOTS) * 8

    def current(self, names: list[str]) -> list[int | None]:
        mapped = self._mapped()
        return [int.from_bytes(mapped[o:o + 8], "little") for o in map(self._offset, names)]

    def bump(self, names: Iterable[str]) -> None:
        mapped = self._mapped()
        fcntl.flock(self._fd, fcntl.LOCK_EX)  # read-modify-write across processes
        try:
            for offset in {self._offset(name) for name in names}:
                value = int.from_bytes(mapped[offset:offset + 8], "little") + 1
                mapped[offset:offset + 8] = value.to_bytes(8, "little")
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)


class SharedCounters:
    """Counters in Redis. A missing counter starts at a random value, so a Redis that lost its
    data (a restart: it keeps nothing on disk) never hands back a value an old answer was kept
    under. Every request reads its counters, so the read goes over a connection of the
    thread's own, past redis-py's pool and retry layers (a third of the time of a pooled MGET);
    anything unusual goes through the shared client."""

    PREFIX = "gen:"

    def __init__(self, store) -> None:
        self.store = store  # app.core.kv.Store with Redis configured
        self._local = threading.local()

    def _mget(self, keys: list[str]) -> list:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.pid != os.getpid():
            # A connection of its own, outside the pool's accounting (the pool's make_connection
            # would count it against max_connections forever); closed with its thread.
            pool = self.store.redis.connection_pool
            conn = self._local.conn = pool.connection_class(**pool.connection_kwargs)
        try:
            conn.send_command("MGET", *keys)
            return conn.read_response()
        except BaseException:
            conn.disconnect()
            self._local.conn = None
            raise

    def current(self, names: list[str]) -> list[int | None]:
        keys = [self.store.prefix + self.PREFIX + name for name in names]

        def on_redis(r):
            values = self._mget(keys)
            if None in values:
                pipe = r.pipeline()
                for k, v in zip(keys, values):
                    if v is None:
                        pipe.set(k, secrets.randbits(62), nx=True)
                pipe.mget(keys)
                values = pipe.execute()[-1]
            return [int(v) if v is not None else None for v in values]

        return self.store._redis_call(on_redis, lambda: [None] * len(names))

    def bump(self, names: Iterable[str]) -> None:
        def on_redis(r):
            pipe = r.pipeline()
            for name in names:
                k = self.store.prefix + self.PREFIX + name
                pipe.set(k, secrets.randbits(62), nx=True)
                pipe.incr(k)
            pipe.execute()

        self.store._redis_call(on_redis, lambda: log.warning("change counters not bumped: Redis down"))


def counters():
    """The current app's counters (None outside an app)."""
    if not has_app_context():
        return None
    return current_app.extensions.get("generations")


_MEMO = "xgz.counters"  # request.environ: the counters this request has read


def current(names: list[str]) -> list[int | None]:
    """The counters, each read once per request (the first read is the one whatever the request
    reads afterwards is newer than)."""
    store = counters()
    if store is None:
        return [None] * len(names)
    if not has_request_context():
        return store.current(names)
    memo = request.environ.setdefault(_MEMO, {})
    missing = [name for name in names if name not in memo]
    if missing:
        memo.update(zip(missing, store.current(missing)))
    return [memo[name] for name in names]


# -- writers: collect keys while flushing, bump after the commit --------------------------------
def _note(session: Session, names: Iterable[str]) -> None:
    session.info.setdefault(_PENDING, set()).update(names)


def note_rows(session: Session, model: type, rows: list[dict]) -> None:
    """For writes that bypass the ORM's unit of work (app.core.db.insert_ignore)."""
    for tracked in _tracked.get(model, ()):
        _note(session, (key(tracked.topic, row[tracked.by]) for row in rows if row.get(tracked.by) is not None))
    for collect in _observers.get(model, ()):
        for row in rows:
            collect(session, row)


def note_objects(session: Session, objects: Iterable) -> None:
    """Rows changed outside a flush (a compare-and-set UPDATE, app.core.review)."""
    for obj in objects:
        for tracked in _tracked.get(type(obj), ()):
            value = getattr(obj, tracked.by, None)
            if value is not None:
                _note(session, (key(tracked.topic, value),))
    _tell_observers(session, objects)


def _tell_observers(session: Session, objects: Iterable) -> None:
    for obj in objects:
        for collect in _observers.get(type(obj), ()):
            collect(session, obj)


def _collect_from_flush(session: Session, flush_context, instances) -> None:
    if _tracked:
        for obj in (*session.new, *session.dirty, *session.deleted):
            for tracked in _tracked.get(type(obj), ()):
                value = getattr(obj, tracked.by, None)
                if value is not None:
                    _note(session, (key(tracked.topic, value),))


def _observe_flush(session: Session, flush_context) -> None:
    """Observers hear of flushed rows after the flush: new rows have their ids and foreign keys
    then, and the attributes' history (the values before) is still there."""
    if _observers:
        _tell_observers(session, (*session.new, *session.dirty, *session.deleted))


def _collect_from_insert(state) -> None:
    """`session.execute(insert(Model), rows)`: Core inserts of tracked or observed rows count
    as the flush of those rows would."""
    mapper = state.bind_mapper if state.is_insert else None
    if mapper is not None and (mapper.class_ in _tracked or mapper.class_ in _observers):
        from app.core.content import statement_rows

        note_rows(state.session, mapper.class_, statement_rows(state))


def _bump_after_commit(session: Session) -> None:
    names = session.info.pop(_PENDING, None)
    if names:
        store = counters()
        if store is not None:
            store.bump(sorted(names))


def _forget(session: Session, *args) -> None:
    session.info.pop(_PENDING, None)


def install(app) -> None:
    """create_app: the app's counters, and the session hooks (once per process)."""
    store = app.extensions["kv"]  # app.core.kv.Store: Redis when configured
    app.extensions["generations"] = (SharedCounters(store) if store.shared
                                     else HostCounters(Path(app.config["INSTANCE_DIR"]) / "generations.bin"))
    if not event.contains(Session, "before_flush", _collect_from_flush):
        event.listen(Session, "before_flush", _collect_from_flush)
        event.listen(Session, "do_orm_execute", _collect_from_insert)
        event.listen(Session, "after_flush", _observe_flush)
        event.listen(Session, "after_commit", _bump_after_commit)
        event.listen(Session, "after_rollback", _forget)
