"""Writing reminders into the outbox, and the shape WeChat wants for their subscribe message.

Sweeps compute `Reminder`s set-based and hand them to `enqueue`, which inserts them in batches
with ON CONFLICT DO NOTHING on the dedupe key: running a sweep twice, or in two schedulers at
once, adds each reminder once. A sweep over a province (hundreds of thousands of due rows)
builds its rows in SQL instead and hands the SELECT to `enqueue_select`: one INSERT … SELECT …
ON CONFLICT DO NOTHING, so the rows already in the outbox are skipped by the database and a
rerun costs about its due query. Sending is the dispatcher's job (dispatcher.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Iterable

from sqlalchemy import Select, String, case, exists, func, literal, select, text

from app.core.db import insert_ignore, is_postgres
from app.core.time import to_local, utcnow
from app.reminders.models import Notification

ENQUEUE_BATCH = 1000
DEDUPE_KEY = ["user_id", "kind", "subject", "period"]

# WeChat's value limits per subscribe-message field type (the field name minus its number).
VALUE_LIMITS = {
    "thing": 20, "name": 10, "phrase": 5, "character_string": 32, "number": 32, "letter": 32,
    "symbol": 5, "phone_number": 17, "car_number": 8, "amount": 32,
}


@dataclass(frozen=True)
class Reminder:
    """One reminder to insert. (user_id, kind, subject, period) is its dedupe key."""

    user_id: int
    kind: str
    subject: str
    period: str
    title: str
    body: str
    template_key: str | None = None
    page: str | None = None
    wx_data: dict[str, str] = field(default_factory=dict)
    channel: str = "wechat"

    def row(self, now: datetime) -> dict:
        inbox_only = self.channel == "inbox" or not self.template_key
        return {
            "user_id": self.user_id, "kind": self.kind, "subject": self.subject, "period": self.period,
            "template_key": self.template_key, "title": clip(self.title, 64), "body": clip(self.body, 500),
            "page": self.page, "wx_data": self.wx_data or None,
            "channel": "inbox" if inbox_only else "wechat",
            # Nothing to push for inbox-only reminders: they are delivered the moment they exist.
            "status": "sent" if inbox_only else "pending",
            "sent_at": now if inbox_only else None,
            "attempts": 0, "next_attempt_at": now, "created_at": now,
        }


def enqueue(reminders: Iterable[Reminder], now: datetime | None = None,
            batch_size: int = ENQUEUE_BATCH) -> int:
    """Insert reminders not in the outbox yet; returns how many were new. The caller commits
    (jobs commit per batch via `enqueue_committing`)."""
    now = now or utcnow()
    added = 0
    for chunk in _chunks(reminders, batch_size):
        added += insert_ignore(Notification, [r.row(now) for r in chunk],
                               ["user_id", "kind", "subject", "period"])
    return added


def enqueue_committing(reminders: Iterable[Reminder], now: datetime | None = None,
                       batch_size: int = ENQUEUE_BATCH) -> int:
    """`enqueue` with a commit per batch (jobs): a crash loses at most the current batch,
    and the next run inserts exactly what is still missing."""
    from app.extensions import db

    now = now or utcnow()
    added = 0
    for chunk in _chunks(reminders, batch_size):
        added += enqueue(chunk, now, batch_size)
        db.session.commit()
    return added


def enqueue_select(rows: Select) -> int:
    """INSERT INTO notifications (…) SELECT … ON CONFLICT (dedupe key) DO NOTHING; returns how
    many were new. `rows` selects columns labelled like the outbox's (see `wechat_columns`).
    Same dedupe as `enqueue`; the caller commits (one statement: all or nothing)."""
    from app.extensions import db

    if is_postgres():
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    names = [column.name for column in rows.selected_columns]
    # SQLite needs the WHERE it already has: "INSERT … SELECT … ON CONFLICT" parses only then.
    statement = (insert(Notification.__table__).from_select(names, rows)
                 .on_conflict_do_nothing(index_elements=DEDUPE_KEY))
    if is_postgres():
        # psycopg reports rowcount -1 for SQLAlchemy's INSERT … SELECT: count the RETURNING
        # rows in the database instead of fetching them.
        inserted = statement.returning(literal(1)).cte("inserted")
        return db.session.scalar(select(func.count()).select_from(inserted))
    db.session.execute(statement)
    # Python's sqlite3 reports rowcount -1 for a statement that starts with WITH.
    return db.session.scalar(text("SELECT changes()"))


def not_queued(user_id, kind: str, subject, period):
    """SQL: no outbox row has this dedupe key yet. `enqueue_select`'s SELECT filters with it, so
    a rerun skips what is there before building texts (ON CONFLICT still settles a race)."""
    return ~exists().where(Notification.user_id == user_id, Notification.kind == kind,
                           Notification.subject == subject, Notification.period == period)


def wechat_columns(*, user_id, kind: str, subject, period, template_key: str, title, body, page,
                   wx_data: dict, now: datetime) -> list:
    """The SELECT list of `enqueue_select` for a subscribe-message reminder: SQL expressions for
    what `Reminder(...).row(now)` computes in Python (same clipping, same status)."""
    return [
        user_id.label("user_id"), literal(kind, String).label("kind"), subject.label("subject"),
        period.label("period"), literal(template_key, String).label("template_key"),
        clip_sql(title, 64).label("title"), clip_sql(body, 500).label("body"), page.label("page"),
        json_object(wx_data).label("wx_data"), literal("wechat", String).label("channel"),
        literal("pending", String).label("status"), literal(0).label("attempts"),
        literal(now).label("next_attempt_at"), literal(now).label("created_at"),
    ]


def clip_sql(text, limit: int):
    """`clip` in SQL: cut to `limit` characters, the last one an ellipsis."""
    return case((func.length(text) <= limit, text), else_=func.substr(text, 1, limit - 1) + "…")


def json_object(values: dict):
    """{"key": SQL expression} as a JSON object built by the database."""
    build = func.json_build_object if is_postgres() else func.json_object
    return build(*[part for key, value in values.items() for part in (literal(key, String), value)])


def _chunks(items: Iterable, size: int) -> Iterable[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def clip(text: str, limit: int) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def subscribe_data(values: dict[str, str] | None) -> dict[str, dict[str, str]]:
    """{"thing1": "…", "time2": "…"} -> WeChat's {"thing1": {"value": "…"}, …}, each value cut
    to its type's limit (thing ≤ 20 characters …), since WeChat refuses longer values (47003)."""
    data = {}
    for key, value in (values or {}).items():
        kind = key.rstrip("0123456789")
        limit = VALUE_LIMITS.get(kind)
        text = str(value) if value is not None else ""
        data[key] = {"value": clip(text, limit) if limit else text}
    return data


def wx_time(value: datetime) -> str:
    """A naive-UTC instant as WeChat's time field, in Asia/Shanghai: 2026年03月01日 09:00."""
    return to_local(value).strftime("%Y年%m月%d日 %H:%M")


def wx_date(value: date) -> str:
    return value.strftime("%Y年%m月%d日")
