"""PATCH semantics shared by every editable record: only the fields sent change, `closed`
toggles a `closed_at` moment, and the audit log gets exactly what changed, before and after."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from app.core.time import utcnow


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (datetime, date)) else value


def apply(record, changes: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Set what differs; return (before, after) of the changed fields, JSON-ready. A `closed`
    key closes (closed_at = now) or reopens (closed_at = None) the record."""
    before, after = {}, {}
    for key, value in changes.items():
        if key == "closed":
            if value == (record.closed_at is not None):
                continue
            before["closed"], after["closed"] = not value, value
            record.closed_at = utcnow() if value else None
            continue
        current = getattr(record, key)
        if current == value:
            continue
        before[key], after[key] = _plain(current), _plain(value)
        setattr(record, key, value)
    return before, after
