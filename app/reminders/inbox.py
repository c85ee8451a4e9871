"""The in-app inbox (消息中心): every reminder, pushed or not, is an entry here."""
from __future__ import annotations

from sqlalchemy import func, select, update

from app.core.errors import APIError
from app.core.pagination import paginate
from app.core.time import utcnow
from app.extensions import db
from app.reminders import errors  # noqa: F401  registers the feature's codes
from app.reminders.models import Notification


def list_inbox(user_id: int, page: int, per_page: int) -> dict:
    """Newest first, with the user's unread count beside the page."""
    stmt = (select(Notification).where(Notification.user_id == user_id)
            .order_by(Notification.id.desc()))
    result = paginate(stmt, page, per_page)
    result["unread"] = unread_count(user_id)
    return result


def unread_count(user_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None))) or 0


def get_own(user_id: int, notification_id: int) -> Notification:
    """Another user's entry is indistinguishable from a missing one (404)."""
    row = db.session.get(Notification, notification_id)
    if row is None or row.user_id != user_id:
        raise APIError(code="NOTIFICATION_NOT_FOUND")
    return row


def mark_read(user_id: int, notification_id: int) -> Notification:
    row = get_own(user_id, notification_id)
    if row.read_at is None:
        row.read_at = utcnow()
        db.session.flush()
    return row


def mark_all_read(user_id: int) -> int:
    updated = db.session.execute(
        update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=utcnow()).execution_options(synchronize_session=False)).rowcount or 0
    db.session.flush()
    return updated
