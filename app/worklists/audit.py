"""The audit trail for those who oversee: an administrator reads all of it, a regulator the
entries about objects in their region (app.core.audit.AuditEntry.region_code). Newest first."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import false, or_, select, true

from app.core.audit import AuditEntry
from app.core.pagination import paginate
from app.core.regions import code_prefix
from app.core.time import local_midnight_utc
from app.identity.auth import authorize
from app.identity.people import with_people


def readable_by(actor):
    conditions = []
    for grant in actor.grants:
        if grant.role == "admin":
            return true()
        if grant.role == "regulator" and grant.scope_type == "region":
            conditions.append(AuditEntry.region_code.like(code_prefix(grant.scope_id) + "%"))
    return or_(*conditions) if conditions else false()


def audit_log(actor, filters: dict, page: int, per_page: int) -> dict:
    authorize(actor, ["regulator", "admin"])
    stmt = select(AuditEntry).where(readable_by(actor))
    if filters.get("target_type"):
        stmt = stmt.where(AuditEntry.target_type == filters["target_type"])
    if filters.get("target_id"):
        stmt = stmt.where(AuditEntry.target_id == filters["target_id"])
    if filters.get("actor"):
        stmt = stmt.where(AuditEntry.actor_id == filters["actor"])
    if filters.get("action"):
        stmt = stmt.where(AuditEntry.action.startswith(filters["action"], autoescape=True))
    if filters.get("from"):
        stmt = stmt.where(AuditEntry.at >= local_midnight_utc(filters["from"]))
    if filters.get("to"):
        stmt = stmt.where(AuditEntry.at < local_midnight_utc(filters["to"] + timedelta(days=1)))
    return with_people(paginate(stmt.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()), page, per_page),
                       "actor_id")


