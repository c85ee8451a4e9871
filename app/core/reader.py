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
from contextlib import contextmanager
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


_in_transaction = threading.local()


@contextmanager
def reading_in_transaction():
    """Within this block query() runs on the request's session, so it sees what this
    transaction has written but not committed (a writer refreshing what it just changed)."""
    previous = getattr(_in_transaction, "on", False)
    _in_transaction.on = True
    try:
        yield
    finally:
        _in_transaction.on = previous


def query(sql: str, params: tuple, engine=None) -> list[tuple]:
    """Plain SQL ("?" placeholders) on the thread's reader connection: committed data only
    (or on the session inside reading_in_transaction). `engine` lets callers without an app
    context (the WSGI fast path) use it. Falls back to the session when the connection fails."""
    if getattr(_in_transaction, "on", False):
        return _on_session(sql, params)
    engine = engine if engine is not None else db.engine
    try:
        reader = getattr(_reader, "reader", None)
        if reader is None or reader.engine is not engine:
            if reader is not None:
                # Never let it fall back into its pool: it is in autocommit, and a session that
                # checked it out later could not open a transaction (or a savepoint).
                reader.close()
            reader = _reader.reader = _Reader(engine)
        return reader.fetch(sql, params)
    except Exception:
        close_thread_reader()
        if not has_app_context():
            raise
        return _on_session(sql, params)


def _on_session(sql: str, params: tuple) -> list[tuple]:
    names = {f"p{i}": value for i, value in enumerate(params)}
    counter = iter(range(len(params)))
    bound = "".join(part + (f":p{next(counter)}" if i < len(params) else "")
                    for i, part in enumerate(sql.split("?")))
    return [tuple(row) for row in db.session.execute(text(bound), names)]


def sql_time(value: datetime):
    """A naive-UTC datetime as a query() parameter: SQLAlchemy stores SQLite DateTime as text in
    exactly this form (so text comparison orders it); PostgreSQL takes the object."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f") if db.engine.dialect.name == "sqlite" else value


_reader = threading.local()


class _Reader:
    """A DBAPI connection kept per worker thread, in autocommit: a small read costs one
    indexed SELECT instead of an ORM session checkout, transaction and commit (measured: most
    of a warm badge read's time, see scripts/bench). Any failure drops it."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.pid = os.getpid()
        self.fairy = engine.raw_connection()
        driver = self.fairy.driver_connection
        # Out of the pool for good: it runs in autocommit, and must never be handed to a session
        # (which could then open no transaction), not even when its thread dies without
        # closing it (threaded servers); a detached connection is closed, not returned.
        self.fairy.detach()
        if engine.dialect.name == "postgresql":
            driver.autocommit = True  # each read sees the latest commit, holds no snapshot
        # pysqlite opens no transaction for a SELECT, so each read sees the latest commit.
        self.mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self.driver = driver

    def fetch(self, sql: str, params: tuple) -> list[tuple]:
        cursor = self.driver.cursor()
        try:
            cursor.execute(sql if self.mark == "?" else sql.replace("?", self.mark), params)
            return cursor.fetchall()
        finally:
            cursor.close()

    def close(self) -> None:
        if self.pid != os.getpid():
            return  # inherited through a fork: the socket is the parent's, leave it alone
        try:
            self.driver.close()  # detached: closing it is all that is left to do
        except Exception:
            pass


def close_thread_reader() -> None:
    """Return this thread's reader connection (worker or test session ending): left to the
    garbage collector at interpreter exit, its reset would fail noisily."""
    reader = getattr(_reader, "reader", None)
    _reader.reader = None
    if reader is not None:
        reader.close()


class _ReaderHolder:
    """The per-thread reader connection, as a declared process cache."""

    def clear(self) -> None:
        close_thread_reader()


atexit.register(close_thread_reader)
process_cache("reader_connection", _ReaderHolder())
