"""The subscribe-message consent ledger (一次性订阅消息授权).

WeChat lets a mini-program send one subscribe message per consent the user gave with
wx.requestSubscribeMessage. The ledger mirrors that: POST /me/subscriptions adds one per
accepted template, a delivery takes one (atomic decrement, reserved before the call and given
back if WeChat did not deliver), and 43101 (the user refuses) zeroes it."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select, update

from app.core.db import insert_ignore
from app.core.errors import APIError
from app.core.time import utcnow
from app.extensions import db
from app.reminders import errors  # noqa: F401  registers the feature's codes
from app.reminders.models import SubscriptionConsent


def template_keys() -> tuple[str, ...]:
    return tuple(current_app.config["WECHAT_SUBSCRIBE_TEMPLATES"])


def template_id(key: str) -> str:
    return current_app.config["WECHAT_SUBSCRIBE_TEMPLATES"][key]


def check_template_keys(keys: list[str]) -> list[str]:
    """Distinct keys in the given order; 422 TEMPLATE_KEY_UNKNOWN for any unknown key."""
    known = template_keys()
    unknown = [key for key in keys if key not in known]
    if unknown:
        raise APIError(code="TEMPLATE_KEY_UNKNOWN", details={"unknown": unknown, "known": list(known)})
    return list(dict.fromkeys(keys))


def add_consents(user_id: int, keys: list[str]) -> list[SubscriptionConsent]:
    """One consent per key the user just accepted. insert-then-increment keeps concurrent
    requests from losing a consent (no read-modify-write in Python)."""
    keys = check_template_keys(keys)
    now = utcnow()
    insert_ignore(SubscriptionConsent,
                  [{"user_id": user_id, "template_key": key, "remaining": 0, "updated_at": now} for key in keys],
                  ["user_id", "template_key"])
    if keys:
        db.session.execute(
            update(SubscriptionConsent)
            .where(SubscriptionConsent.user_id == user_id, SubscriptionConsent.template_key.in_(keys))
            .values(remaining=SubscriptionConsent.remaining + 1, updated_at=now)
            .execution_options(synchronize_session=False))
    db.session.flush()
    return ledger(user_id)


def ledger(user_id: int) -> list[SubscriptionConsent]:
    rows = db.session.scalars(select(SubscriptionConsent).where(SubscriptionConsent.user_id == user_id)
                              .execution_options(populate_existing=True)).all()
    by_key = {row.template_key: row for row in rows}
    return [by_key.get(key) or SubscriptionConsent(user_id=user_id, template_key=key, remaining=0)
            for key in template_keys()]


def take_consent(user_id: int, key: str) -> bool:
    """Use one consent; False when none is left. Atomic: two senders never share one."""
    result = db.session.execute(
        update(SubscriptionConsent)
        .where(SubscriptionConsent.user_id == user_id, SubscriptionConsent.template_key == key,
               SubscriptionConsent.remaining > 0)
        .values(remaining=SubscriptionConsent.remaining - 1, updated_at=utcnow())
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


def give_back_consent(user_id: int, key: str) -> None:
    """WeChat did not deliver, so it did not use the user's consent either."""
    db.session.execute(
        update(SubscriptionConsent)
        .where(SubscriptionConsent.user_id == user_id, SubscriptionConsent.template_key == key)
        .values(remaining=SubscriptionConsent.remaining + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False))


def clear_consents(user_id: int, key: str) -> None:
    """43101: the user refuses this template; what we counted is void."""
    db.session.execute(
        update(SubscriptionConsent)
        .where(SubscriptionConsent.user_id == user_id, SubscriptionConsent.template_key == key)
        .values(remaining=0, updated_at=utcnow())
        .execution_options(synchronize_session=False))
