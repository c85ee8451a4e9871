"""What every review (claims, credentials, feedback, memberships, leave, pledges) shares: a
refusal must say why, and the record keeps who decided, when and why."""
from __future__ import annotations

from app.core.errors import APIError
from app.core.time import utcnow

REFUSALS = frozenset({"reject", "dismiss", "revoke"})


def decision_reason(decision: str, reason: str | None, *, required: bool = False) -> str | None:
    """The trimmed reason; 422 REASON_REQUIRED when it is missing for a refusal (or always,
    with `required`)."""
    reason = (reason or "").strip() or None
    if reason is None and (required or decision in REFUSALS):
        raise APIError(code="REASON_REQUIRED", details={"fields": {"reason": ["拒绝、驳回或撤销时必须填写原因"]}})
    return reason


def mark_reviewed(record, actor, reason: str | None) -> None:
    """Stamp reviewed_by_id / reviewed_at / review_reason on a reviewed row."""
    record.reviewed_by_id = actor.id
    record.reviewed_at = utcnow()
    record.review_reason = reason
