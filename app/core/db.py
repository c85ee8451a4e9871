"""Database helpers shared by every feature: engine tuning, race-safe inserts, UTC columns."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column

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
    if is_postgres():
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    # RETURNING counts exactly the rows inserted (rowcount is -1 for some drivers/paths).
    primary_key = list(model.__table__.primary_key.columns)
    stmt = (insert(model).values(rows).on_conflict_do_nothing(index_elements=index_elements)
            .returning(*primary_key))
    return len(db.session.execute(stmt).all())


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow,
                                                 nullable=False)
