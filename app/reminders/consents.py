"""The subscribe-message consent ledger (一次性订阅消息授权).

WeChat lets a mini-program send one subscribe message per consent the user gave with
wx.requestSubscribeMessage. The ledger mirrors that: POST /me/subscriptions adds one per
accepted template, a delivery takes one (atomic decrement, reserved before the call and given
back if WeChat did not deliver), and 43101 (the user refuses) zeroes it."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import bindparam, select, update

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


def take_consents(wanted: list[tuple[int, str]]) -> list[bool]:
    """`take_consent` for a batch, in one read and one write: the ledger rows are locked (in
    user, template order on PostgreSQL; SQLite has one writer), each wanted (user, template)
    gets one consent while any is left, in the given order. Returns one bool per entry."""
    if not wanted:
        return []
    users = sorted({user_id for user_id, _ in wanted})
    keys = sorted({key for _, key in wanted})
    rows = db.session.execute(
        select(SubscriptionConsent.id, SubscriptionConsent.user_id, SubscriptionConsent.template_key,
               SubscriptionConsent.remaining)
        .where(SubscriptionConsent.user_id.in_(users), SubscriptionConsent.template_key.in_(keys),
               SubscriptionConsent.remaining > 0)
        .order_by(SubscriptionConsent.user_id, SubscriptionConsent.template_key)
        .with_for_update()).all()
    left = {(row.user_id, row.template_key): row.remaining for row in rows}
    ids = {(row.user_id, row.template_key): row.id for row in rows}
    taken: dict[tuple[int, str], int] = {}
    granted = []
    for pair in wanted:
        ok = left.get(pair, 0) > 0
        if ok:
            left[pair] -= 1
            taken[pair] = taken.get(pair, 0) + 1
        granted.append(ok)
    if taken:
        table = SubscriptionConsent.__table__
        db.session.execute(
            update(table).where(table.c.id == bindparam("b_id"))
            .values(remaining=table.c.remaining - bindparam("b_taken"), updated_at=utcnow()),
            [{"b_id": ids[pair], "b_taken": n} for pair, n in sorted(taken.items())])
    return granted


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
