"""What every review (claims, credentials, feedback, memberships, leave, pledges) shares: a
refusal must say why; the record keeps who decided, when and why; and a decision is a
compare-and-set on the row, so of two reviewers deciding at once exactly one wins and the
other gets 409 (one audit row, one notice: callers record those only after `decide` returns)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update

from app.core import generations
from app.core.errors import APIError
from app.core.time import utcnow
from app.extensions import db

REFUSALS = frozenset({"reject", "dismiss", "revoke"})


def decision_reason(decision: str, reason: str | None, *, required: bool = False) -> str | None:
    """The trimmed reason; 422 REASON_REQUIRED when it is missing for a refusal (or always,
    with `required`)."""
    reason = (reason or "").strip() or None
    if reason is None and (required or decision in REFUSALS):
        raise APIError(code="REASON_REQUIRED", details={"fields": {"reason": ["拒绝、驳回或撤销时必须填写原因"]}})
    return reason


def compare_and_set(record, expected, values: dict[str, Any], refusal: str) -> None:
    """UPDATE the record's row with `values` only if it still matches `expected` (a status, or
    an SQL condition); otherwise 409 `refusal` with the status it has now.

    The database decides: on PostgreSQL the second UPDATE waits for the first transaction and
    re-reads the row; on SQLite writers are serialised. The ORM object is refreshed either way."""
    model = type(record)
    condition = model.status == expected if isinstance(expected, str) else expected
    result = db.session.execute(update(model).where(model.id == record.id, condition).values(**values)
                                .execution_options(synchronize_session=False))
    db.session.refresh(record)
    if result.rowcount == 1:
        generations.note_objects(db.session(), [record])  # as a flush of the change would
    else:
        status = record.status_at(utcnow()) if hasattr(record, "status_at") else record.status
        raise APIError(code=refusal, details={"status": status})


def decide(record, actor, expected, new_status: str, reason: str | None, refusal: str,
           *, now: datetime | None = None, **values: Any) -> None:
    """A review decision: status, reviewer, time and reason in one compare-and-set."""
    compare_and_set(record, expected, {
        "status": new_status, "reviewed_by_id": actor.id, "reviewed_at": now or utcnow(),
        "review_reason": reason, **values}, refusal)
