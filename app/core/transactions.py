"""Read-only requests run without a database transaction.

A GET (or HEAD) that only reads gains nothing from BEGIN … COMMIT: under READ COMMITTED, the
isolation this app runs at, each statement sees its own snapshot either way. On PostgreSQL the
two extra round trips (and SQLAlchemy's transaction machinery around them) cost more than the
statement a typical read runs, so such requests take their connection from the `read` engine
(`configure`: the same database, its connections opened in autocommit once). Switching a pooled
connection to autocommit per checkout instead costs as much as the round trips it saves. On
SQLite there is no `read` engine: pysqlite begins a transaction only before a write anyway.

A read-only request that tries to write fails loudly (`WriteInReadOnlyRequest`), in tests as
in production, instead of committing statement by statement: a GET view that has to write
(a lazily stored value, an audit row) says so with `@transactional`.
"""
from __future__ import annotations

import re

import sqlalchemy as sa
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState

READ_ONLY = "xgz_read_only"  # key in Session.info
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_WRITE_SQL = re.compile(r"\s*(INSERT|UPDATE|DELETE|MERGE|CREATE|DROP|ALTER|TRUNCATE)\b", re.IGNORECASE)
READ_BIND = "read"  # SQLALCHEMY_BINDS key of the autocommit engine (configure)


class WriteInReadOnlyRequest(RuntimeError):
    """A GET view wrote without declaring it: mark it `@transactional`."""


def transactional(view):
    """Give this safe-method view a transaction: it writes (and must commit all or nothing)."""
    view.transactional = True
    return view


def wants_read_only(method: str, view) -> bool:
    return method in SAFE_METHODS and not getattr(view, "transactional", False)


def configure(app) -> None:
    """create_app, before db.init_app: on PostgreSQL, the `read` engine beside the default one
    (same URL, so a test's schema too; connections opened in autocommit)."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("postgresql"):
        binds = app.config.setdefault("SQLALCHEMY_BINDS", {})
        binds.setdefault(READ_BIND, {"url": url, "isolation_level": "AUTOCOMMIT", "pool_size": 5})


class RequestSession(FlaskSession):
    """Flask-SQLAlchemy's session, on the autocommit `read` engine while `info[READ_ONLY]`."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        engine = super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)
        if self.info.get(READ_ONLY) and bind is None:
            engines = self._db.engines
            if engine is engines.get(None) and READ_BIND in engines:
                return engines[READ_BIND]
        return engine


def is_read_only(session) -> bool:
    return bool(session.info.get(READ_ONLY))


def begin_request(session: RequestSession, read_only: bool) -> None:
    """Called when a request starts. A session that already holds work (a test or CLI caller
    serving requests inside its own app context) keeps its transaction."""
    busy = session.in_transaction() or session.new or session.dirty or session.deleted
    session.info[READ_ONLY] = read_only and not busy


def end_request(session: RequestSession) -> None:
    """Called when a request ends: the session may outlive it (a caller's own app context), so
    it leaves read-only mode and hands its autocommit connection back."""
    if session.info.pop(READ_ONLY, False) and session.in_transaction():
        session.rollback()  # nothing was written: this only returns the connection


@event.listens_for(RequestSession, "before_flush")
def _refuse_flush(session, flush_context, instances) -> None:
    if session.info.get(READ_ONLY):
        raise WriteInReadOnlyRequest("this GET request changed ORM objects; mark its view @transactional")


@event.listens_for(RequestSession, "do_orm_execute")
def _refuse_write_statement(state: ORMExecuteState) -> None:
    if not state.session.info.get(READ_ONLY):
        return
    statement = state.statement
    if isinstance(statement, sa.TextualSelect):  # text(…).columns(…), e.g. INSERT … RETURNING
        statement = statement.element
    if state.is_insert or state.is_update or state.is_delete or (
            isinstance(statement, sa.TextClause) and _WRITE_SQL.match(statement.text)):
        raise WriteInReadOnlyRequest("this GET request ran a write statement; mark its view @transactional")
