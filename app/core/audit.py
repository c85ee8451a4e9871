"""Append-only audit log: who did what to which object, before and after, why, in which request."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import g, has_request_context
from sqlalchemy import JSON, DateTime, ForeignKey, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column

from app.core.time import utcnow
from app.extensions import db


class AuditEntry(db.Model):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    actor_role: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    target_type: Mapped[str] = mapped_column(String(32), nullable=False)
    target_id: Mapped[str] = mapped_column(String(64), nullable=False)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(64))
    # Where the object sits (行政区划), so a regulator reads the trail of their own region: the
    # region the request's authorization was decided on (REGION_KEY), unless given.
    region_code: Mapped[str | None] = mapped_column(String(6), index=True)

    __table_args__ = (db.Index("ix_audit_log_target", "target_type", "target_id"),)


REGION_KEY = "audit_region"  # flask.g: the region of the object this request was authorized on


@event.listens_for(AuditEntry, "before_update")
def _refuse_update(mapper, connection, target) -> None:
    raise RuntimeError("audit_log is append-only")


@event.listens_for(AuditEntry, "before_delete")
def _refuse_delete(mapper, connection, target) -> None:
    raise RuntimeError("audit_log is append-only")


def record(action: str, target_type: str, target_id: Any, *, actor=None, actor_role: str | None = None,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
           reason: str | None = None, region_code: str | None = None) -> AuditEntry:
    """Add an audit row in the caller's transaction, so the change and its record commit together."""
    request_id = g.get("request_id") if has_request_context() else None
    if region_code is None and has_request_context():
        region_code = g.get(REGION_KEY)
    entry = AuditEntry(
        actor_id=getattr(actor, "id", None), actor_role=actor_role, action=action,
        target_type=target_type, target_id=str(target_id), before=before, after=after,
        reason=reason, request_id=request_id, region_code=region_code,
    )
    db.session.add(entry)
    db.session.flush()
    return entry
