"""Reads of committed data on a per-thread connection of its own, outside the request's
transaction: the badge's miss path runs a few small indexed SELECTs, and building ORM
statements and checking a session connection out cost several times running them.

Plain SQL with "?" placeholders (rewritten for the driver); values come back as the driver
gives them, so the coercions below take either form. Any failure drops the connection and the
query runs on the session instead."""
from __future__ import annotations

import atexit
import json
import os
import threading
from datetime import date, datetime

from flask import has_app_context
from sqlalchemy import text

from app.core.caches import process_cache
from app.extensions import db


# Plain-SQL values differ by driver: SQLite hands back DATE/DATETIME/JSON columns as text (in
# SQLAlchemy's storage format), psycopg as Python objects. These take either.
def as_date(value):
    return date.fromisoformat(value[:10]) if isinstance(value, str) else value


def as_datetime(value):
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def as_json(value):
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def query(sql: str, params: tuple) -> list[tuple]:
    """Plain SQL ("?" placeholders) on the thread's probe connection, committed data only.

    The badge miss path runs small indexed reads; building ORM statements and checking a session
    connection out cost several times running them. Read hooks called on the miss path
    (pledge_badge_entry, party_member_operator) may use this too. Falls back to the session."""
    engine = db.engine
    try:
        probe = getattr(_probe, "probe", None)
        if probe is None or probe.engine is not engine:
            probe = _probe.probe = _VersionProbe(engine)
        return probe.fetch(sql, params)
    except Exception:
        probe = getattr(_probe, "probe", None)
        if probe is not None:
            probe.close()
        _probe.probe = None
        names = {f"p{i}": value for i, value in enumerate(params)}
        counter = iter(range(len(params)))
        bound = "".join(part + (f":p{next(counter)}" if i < len(params) else "")
                        for i, part in enumerate(sql.split("?")))
        return [tuple(row) for row in db.session.execute(text(bound), names)]


def sql_time(value: datetime):
    """A naive-UTC datetime as a query() parameter: SQLAlchemy stores SQLite DateTime as text in
    exactly this form (so text comparison orders it); PostgreSQL takes the object."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f") if db.engine.dialect.name == "sqlite" else value


_VERSION_SQL = text("SELECT badge_version FROM stalls WHERE token = :token")
_probe = threading.local()


class _ProbeHolder:
    """The badge reader's per-thread connection, as a declared process cache."""

    def clear(self) -> None:
        close_thread_probe()




class _VersionProbe:
    """A DBAPI connection kept per worker thread, in autocommit, that only runs the version
    lookup: the warm read then costs one indexed SELECT instead of an ORM session checkout,
    transaction and commit (measured: most of a warm request's time, see scripts/bench).
    Any failure drops it and the caller falls back to the session."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.pid = os.getpid()
        self.fairy = engine.raw_connection()  # checked out for the thread's lifetime
        driver = self.fairy.driver_connection
        if engine.dialect.name == "postgresql":
            driver.autocommit = True  # each lookup sees the latest commit, holds no snapshot
        # pysqlite opens no transaction for a SELECT, so each lookup reads the latest commit.
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self.mark = mark
        self.sql = f"SELECT badge_version FROM stalls WHERE token = {mark}"
        self.driver = driver

    def fetch(self, sql: str, params: tuple) -> list[tuple]:
        cursor = self.driver.cursor()
        try:
            cursor.execute(sql if self.mark == "?" else sql.replace("?", self.mark), params)
            return cursor.fetchall()
        finally:
            cursor.close()

    def version(self, token: str) -> int | None:
        cursor = self.driver.cursor()
        try:
            cursor.execute(self.sql, (token,))
            row = cursor.fetchone()
        finally:
            cursor.close()
        return row[0] if row else None

    def close(self) -> None:
        if self.pid != os.getpid():
            return  # inherited through a fork: the socket is the parent's, leave it alone
        try:
            self.fairy.invalidate()
        except Exception:
            pass


def close_thread_probe() -> None:
    """Return this thread's probe connection (worker or test session ending): left to the
    garbage collector at interpreter exit, its reset would fail noisily."""
    probe = getattr(_probe, "probe", None)
    _probe.probe = None
    if probe is not None:
        probe.close()


atexit.register(close_thread_probe)
process_cache("badge_reader_connection", _ProbeHolder())


def probe_version(engine, token: str) -> int | None:
    probe = getattr(_probe, "probe", None)
    try:
        if probe is None or probe.engine is not engine:
            probe = _probe.probe = _VersionProbe(engine)
        return probe.version(token)
    except Exception:
        if probe is not None:
            probe.close()
        _probe.probe = None
        if not has_app_context():
            raise
        return db.session.execute(_VERSION_SQL, {"token": token}).scalar()


