"""Idempotency-Key for retried writes (check-in, pledge submit, uploads).

The stored answer is written in the same transaction as the work, so a key is either absent
(the work did not happen) or carries the answer of the work that did. A concurrent duplicate
loses the unique-key race, rolls its own work back and replays the winner's answer."""
from __future__ import annotations

import functools
import hashlib
from datetime import datetime, timedelta

from flask import Response, current_app, g, request
from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String, UniqueConstraint, bindparam, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import insert_ignore
from app.core.errors import APIError, Unauthorized
from app.core.memo import ImmutableFacts
from app.core.time import utcnow
from app.extensions import db

KEY_MAX = 128
RETENTION = timedelta(hours=24)


class IdempotencyRecord(db.Model):
    __tablename__ = "idempotency_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    key: Mapped[str] = mapped_column(String(KEY_MAX), nullable=False)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    status_code: Mapped[int] = mapped_column(Integer, nullable=False)
    body: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False, index=True)

    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_key"),)


def _fingerprint() -> str:
    """What the request asks for. A multipart body is hashed by its fields and file contents,
    not its bytes: a client that rebuilds the form for a retry picks a new boundary."""
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(request.path.encode())
    if request.mimetype == "multipart/form-data":
        for name, value in sorted(request.form.items(multi=True)):
            digest.update(f"\0f\0{name}\0{value}".encode())
        for name, storage in sorted(request.files.items(multi=True), key=lambda item: item[0]):
            digest.update(f"\0u\0{name}\0{storage.filename or ''}\0".encode())
            for chunk in iter(lambda: storage.stream.read(65536), b""):
                digest.update(chunk)
            storage.stream.seek(0)
    else:
        digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def _replay(record, fingerprint: str) -> Response:
    if record.fingerprint != fingerprint:
        raise APIError(code="IDEMPOTENCY_KEY_REUSED")
    response = current_app.response_class(record.body, status=record.status_code,
                                          mimetype="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    return response


@functools.cache
def _stored_answer():
    """Built once: a retried write's lookup is on the hot path of every retry (P4)."""
    table = IdempotencyRecord.__table__
    return (select(table.c.fingerprint, table.c.status_code, table.c.body)
            .where(table.c.user_id == bindparam("user_id"), table.c.key == bindparam("key")))


# A stored answer never changes; retries of one key may hit this worker again and again.
_answers = ImmutableFacts("idempotent_answers", size=20_000, ttl_seconds=600)


def _find(user_id: int, key: str):
    """(fingerprint, status_code, body) stored for this user's key, or None."""
    answer = _answers.get((user_id, key))
    if answer is None:
        answer = db.session.execute(_stored_answer(), {"user_id": user_id, "key": key}).first()
        if answer is not None:  # read back, so committed by an earlier request
            _answers.put((user_id, key), answer)
    return answer


def idempotent(view):
    """Put right under @blp.route so it wraps the final Response of the view."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            return view(*args, **kwargs)
        if len(key) > KEY_MAX:
            raise APIError(code="VALIDATION_ERROR", message="Idempotency-Key 过长（最多 128 个字符）")
        # Idempotent routes require login (@requires), so identity has authenticated the caller
        # before the view runs; replays are per user.
        user = g.get("current_user")
        if user is None:
            raise Unauthorized()
        fingerprint = _fingerprint()
        existing = _find(user.id, key)
        if existing is not None:
            return _replay(existing, fingerprint)
        response = view(*args, **kwargs)
        if not isinstance(response, Response):
            response = current_app.make_response(response)
        if response.status_code >= 400:
            return response
        inserted = insert_ignore(IdempotencyRecord, {
            "user_id": user.id, "key": key, "fingerprint": fingerprint,
            "status_code": response.status_code, "body": response.get_data(),
            "created_at": utcnow(),
        }, ["user_id", "key"])
        if inserted:
            return response
        # A concurrent request with the same key committed first: drop our work, replay theirs.
        db.session.rollback()
        winner = _find(user.id, key)
        if winner is None:
            raise APIError(code="IDEMPOTENCY_IN_PROGRESS")
        return _replay(winner, fingerprint)

    return wrapper


def purge_expired(now: datetime | None = None) -> int:
    cutoff = (now or utcnow()) - RETENTION
    return db.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff)).rowcount or 0
