"""Database helpers shared by every feature: engine tuning, race-safe inserts, UTC columns."""
from __future__ import annotations

import select as _select
import threading
import time
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, bindparam, event, exc, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.pool import Pool

from app.core.caches import process_cache
from app.core.time import utcnow
from app.extensions import db


@event.listens_for(Engine, "connect")
def _tune_sqlite(dbapi_connection, connection_record) -> None:
    """WAL lets readers run beside one writer; busy_timeout makes racing writers wait instead
    of failing with 'database is locked'; foreign keys are off in SQLite unless asked."""
    module = type(dbapi_connection).__module__
    if not module.startswith("sqlite3"):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def is_postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def insert_ignore(model: type, values: dict[str, Any] | list[dict[str, Any]],
                  index_elements: list[str] | None = None) -> int:
    """INSERT … ON CONFLICT DO NOTHING on SQLite and PostgreSQL; returns rows inserted.

    The unique constraint decides who wins a race, not a read-then-write in Python."""
    rows = values if isinstance(values, list) else [values]
    if not rows:
        return 0
    _as_the_orm_would(model, rows)
    if len(rows) == 1:
        prepared = _prepared_insert(model.__table__, rows[0], index_elements)
        if prepared is not None:
            statement, params = prepared
            return len(db.session.execute(statement, params).all())
    if is_postgres():
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    # RETURNING counts exactly the rows inserted (rowcount is -1 for some drivers/paths).
    primary_key = list(model.__table__.primary_key.columns)
    stmt = (insert(model).values(rows).on_conflict_do_nothing(index_elements=index_elements)
            .returning(*primary_key))
    return len(db.session.execute(stmt).all())


def _as_the_orm_would(model: type, rows: list[dict[str, Any]]) -> None:
    """Core inserts bypass the ORM's flush events: run what they would have run (the content
    gate on public text, the change counters of tracked rows)."""
    from app.core import content, generations

    session = db.session()
    content.check_rows(session, model, rows)
    generations.note_rows(session, model, rows)


# SQLAlchemy never caches the compiled form of the dialects' INSERT … ON CONFLICT constructs
# (their Insert classes set inherit_cache = False), so building one per call compiles SQL every
# time (~0.3 ms, on hot paths like a check-in). The same statement as a text() with typed bind
# parameters is built once per (table, columns, conflict target, returning) and hits the
# compiled cache afterwards. The SQL is valid on both SQLite (≥ 3.35) and PostgreSQL.
_prepared: dict[tuple, Any] = process_cache("prepared_statements", {})
_prepared_lock = threading.Lock()


def _python_default(column):
    """The value of a column's Python-side default, or raise LookupError when it has none we
    can evaluate without an execution context (SQL expressions, sequences, context callables)."""
    default = column.default
    if default is None or not default.is_scalar and not default.is_callable:
        raise LookupError(column.key)
    if default.is_scalar:
        return default.arg
    if getattr(default.arg, "__wrapped__", None) is None:  # takes the execution context
        raise LookupError(column.key)
    return default.arg(None)


def _with_defaults(table, values: dict[str, Any]) -> dict[str, Any] | None:
    """`values` plus the Python-side defaults the Core insert would have applied; None when a
    key is not a column or an omitted column's default needs the compiled path."""
    columns = table.c
    if any(key not in columns for key in values):
        return None
    row = dict(values)
    for column in columns:
        if column.key in row or column.default is None:
            continue
        try:
            row[column.key] = _python_default(column)
        except LookupError:
            return None
    return row


def insert_ignore_statement(table, keys: tuple[str, ...], index_elements: tuple[str, ...] | None,
                            returning: tuple[str, ...] | None = None):
    """Cached `INSERT INTO t (keys) VALUES (…) ON CONFLICT (index_elements) DO NOTHING
    RETURNING …` for `table` (primary key when `returning` is None); bind names p0, p1, …
    follow `keys`; result columns are typed."""
    dialect = db.engine.dialect
    cache_key = (dialect.name, table, keys, index_elements, returning)
    statement = _prepared.get(cache_key)
    if statement is not None:
        return statement
    quote = dialect.identifier_preparer.quote
    returned = [table.c[key] for key in returning] if returning else list(table.primary_key.columns)
    target = f" ({', '.join(quote(table.c[key].name) for key in index_elements)})" if index_elements else ""
    sql = (f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
           f"({', '.join(quote(table.c[key].name) for key in keys)}) "
           f"VALUES ({', '.join(f':p{i}' for i in range(len(keys)))}) "
           f"ON CONFLICT{target} DO NOTHING RETURNING {', '.join(quote(c.name) for c in returned)}")
    statement = (text(sql)
                 .bindparams(*(bindparam(f"p{i}", type_=table.c[key].type) for i, key in enumerate(keys)))
                 .columns(*returned))
    with _prepared_lock:
        _prepared[cache_key] = statement
    return statement


def _prepared_insert(table, values: dict[str, Any], index_elements, returning=None):
    row = _with_defaults(table, values)
    if row is None:
        return None
    keys = tuple(sorted(row))
    statement = insert_ignore_statement(table, keys, tuple(index_elements) if index_elements else None,
                                        tuple(returning) if returning else None)
    return statement, {f"p{i}": row[key] for i, key in enumerate(keys)}


def insert_ignore_returning(model: type, values: dict[str, Any], index_elements: list[str],
                            returning: tuple[str, ...] | None = None):
    """One row, INSERT … ON CONFLICT DO NOTHING RETURNING `returning` (every column when None):
    the inserted row (typed values, in that order) or None when the unique constraint already
    holds one."""
    table = model.__table__
    _as_the_orm_would(model, [values])
    prepared = _prepared_insert(table, values, index_elements,
                                tuple(returning or (c.key for c in table.columns)))
    if prepared is None:
        raise ValueError(f"{table.name}: values need the compiled insert path")
    statement, params = prepared
    return db.session.execute(statement, params).first()


# -- checking a pooled PostgreSQL connection before use ------------------------------------------
# pool_pre_ping costs a round trip (and a transaction start) on every checkout. A PostgreSQL
# server that restarts, shuts down or kills a backend sends an error and closes the socket, so a
# pooled connection it dropped has bytes (or EOF) waiting to be read: checking the socket without
# blocking finds those for free. A real ping runs when the socket shows anything, and for a
# connection idle longer than PING_IDLE_SECONDS (a host that vanished without closing its
# sockets: a reboot takes longer than that). A failed ping raises DisconnectionError, and the
# pool replaces the connection before the request uses it — what pre-ping does.
PING_IDLE_SECONDS = 10.0


def _psycopg_ping(dbapi_connection) -> None:
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True  # the ping opens no transaction
    try:
        dbapi_connection.execute("SELECT 1")
    finally:
        dbapi_connection.autocommit = autocommit


def _needs_ping(dbapi_connection, record) -> bool:
    last_used = record.info.get("xgz_checked_in")
    if last_used is None or last_used[0] != id(dbapi_connection):
        return False  # a connection just opened needs no proof that it is alive
    if time.monotonic() - last_used[1] > PING_IDLE_SECONDS:
        return True
    poller = _select.poll()  # not select(): descriptors above 1024 are fine
    poller.register(dbapi_connection.pgconn.socket, _select.POLLIN)
    return bool(poller.poll(0))


@event.listens_for(Pool, "checkout")
def _verify_postgres_connection(dbapi_connection, record, proxy) -> None:
    if not hasattr(dbapi_connection, "pgconn"):  # psycopg 3 only; SQLite keeps pool_pre_ping
        return
    try:
        if dbapi_connection.broken or dbapi_connection.closed:
            raise exc.DisconnectionError("connection closed")
        if _needs_ping(dbapi_connection, record):
            _psycopg_ping(dbapi_connection)
    except exc.DisconnectionError:
        raise
    except Exception as error:
        raise exc.DisconnectionError(str(error)) from error


@event.listens_for(Pool, "checkin")
def _remember_checkin(dbapi_connection, record) -> None:
    if dbapi_connection is not None and hasattr(dbapi_connection, "pgconn"):
        record.info["xgz_checked_in"] = (id(dbapi_connection), time.monotonic())


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow,
                                                 nullable=False)


def get_or_404(model: type, ident: Any, code: str):
    """The row with this primary key, or 404 with the feature's own NOT_FOUND code."""
    from app.core.errors import NotFound

    row = db.session.get(model, ident)
    if row is None:
        raise NotFound(code=code)
    return row
