"""The engine's own series: sending what the outbox holds, and the nightly purge of
idempotency keys."""
from __future__ import annotations

from datetime import datetime

from app.core.time import utcnow
from app.extensions import db
from app.reminders.engine import Daily, Every, reminder_series


@reminder_series("dispatch", when=Every(minutes=1), grace_seconds=50, description="发送待发提醒（订阅消息）")
def dispatch_outbox(now: datetime | None = None) -> dict:
    from app.reminders.dispatcher import dispatch

    return dispatch(now or utcnow()).as_dict()


@reminder_series("purge", when=Daily("REMINDERS_PURGE_AT"), grace_seconds=3 * 3600,
                 description="夜间清理（过期的幂等键、已过期的退出登录记录）")
def purge_idempotency_keys(now: datetime | None = None) -> dict:
    from app.core.idempotency import purge_expired
    from app.identity.services import purge_voided_tokens

    now = now or utcnow()
    result = {"idempotency_keys": purge_expired(now), "voided_tokens": purge_voided_tokens(now)}
    db.session.commit()
    return result
