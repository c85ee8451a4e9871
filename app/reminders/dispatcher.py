"""Sends pending outbox rows as WeChat subscribe messages, each dedupe key at most once.

A row goes pending -> sending -> sent | no_consent | failed (or back to pending for a retry).
Each step is its own short transaction, and the WeChat call sits between two of them, never
inside one ("call, then write"):

1. claim (batch): pending rows due now get status=sending, a fresh claim_token and claimed_at.
   PostgreSQL picks them with FOR UPDATE SKIP LOCKED, so concurrent dispatchers split the work;
   SQLite runs one claimer (the scheduler's leader lock) and the claim is one UPDATE statement.
2. start (per row): `send_started_at` is set only WHERE claim_token is still ours and it is
   still NULL, and a consent is taken in the same transaction. Committed before the call.
   This is the fence: whoever flips send_started_at is the only one that may call WeChat.
3. call WeChat.
4. finish (per row): one UPDATE, fenced by claim_token, right after the call returns.

Crash policy. A row found in `sending` after its lease (LEASE) belongs to a dead dispatcher:
- send_started_at IS NULL: the crash came before step 2 committed, so WeChat was never called
  for it; the row goes back to pending and is sent once.
- send_started_at set: the crash came between steps 2 and 4 and nobody can know whether WeChat
  delivered (it has no idempotency key). We choose at most once: the row is marked failed with
  last_error "outcome_unknown" and never sent again; the inbox entry is there either way. The
  window is one HTTP call long.
Retries (WeChat -1, HTTP 5xx, timeouts, rate limits) back off exponentially: 1, 2, 4, 8, 16
minutes, then failed. 43101 is final: status no_consent and the user's ledger for that
template is zeroed. An expired access token is refreshed once and the call retried by the
WeChat client itself."""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests
from sqlalchemy import select, update
from wechatpy.exceptions import WeChatClientException

from app.core.db import is_postgres
from app.core.time import utcnow
from app.extensions import db
from app.identity.models import User
from app.reminders import consents
from app.reminders.models import Notification
from app.reminders.outbox import subscribe_data

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)  # >> one batch of calls at WECHAT_TIMEOUT_SECONDS each
CLAIM_BATCH = 50
MAX_ATTEMPTS = 6
FIRST_BACKOFF = timedelta(minutes=1)
MAX_BACKOFF = timedelta(hours=1)
REFUSED = 43101
# WeChat errors that a later attempt cannot fix: invalid openid, template, data, page.
FINAL_ERRCODES = {40003, 40037, 47003, 41028, 41029, 41030}


@dataclass
class DispatchStats:
    claimed: int = 0
    sent: int = 0
    no_consent: int = 0
    retried: int = 0
    failed: int = 0
    reclaimed: int = 0
    unknown: int = 0
    lost: int = 0  # claims another dispatcher took over (after our lease ran out)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "errors"}


@dataclass(frozen=True)
class Claimed:
    id: int
    user_id: int
    openid: str
    template_key: str | None
    page: str | None
    wx_data: dict | None
    attempts: int


def backoff(attempts: int) -> timedelta:
    """Delay before the next try after `attempts` failed calls: 1, 2, 4, 8 … minutes."""
    return min(FIRST_BACKOFF * (2 ** max(attempts - 1, 0)), MAX_BACKOFF)


def dispatch(now: datetime | None = None, batch_size: int = CLAIM_BATCH, max_rows: int = 5000) -> DispatchStats:
    """Reclaim stale claims, then claim and send due rows batch by batch (commits per step)."""
    now = now or utcnow()
    stats = DispatchStats()
    reclaim_stale(now, stats)
    while stats.claimed < max_rows:
        token, rows = claim_batch(now, batch_size)
        if not rows:
            break
        stats.claimed += len(rows)
        for row in rows:
            deliver(row, token, now, stats)
    return stats


def reclaim_stale(now: datetime, stats: DispatchStats | None = None) -> tuple[int, int]:
    """Rows left in `sending` by a dispatcher that died: see the crash policy above."""
    cutoff = now - LEASE
    stale = (Notification.status == "sending", Notification.claimed_at < cutoff)
    back = db.session.execute(
        update(Notification).where(*stale, Notification.send_started_at.is_(None))
        .values(status="pending", claim_token=None, claimed_at=None)
        .execution_options(synchronize_session=False)).rowcount or 0
    unknown = db.session.execute(
        update(Notification).where(*stale, Notification.send_started_at.is_not(None))
        .values(status="failed", last_error="outcome_unknown")
        .execution_options(synchronize_session=False)).rowcount or 0
    db.session.commit()
    if back or unknown:
        log.warning("reclaimed stale reminder claims: %s back to pending, %s with unknown outcome",
                    back, unknown)
    if stats is not None:
        stats.reclaimed += back
        stats.unknown += unknown
    return back, unknown


def claim_batch(now: datetime, limit: int = CLAIM_BATCH) -> tuple[str, list[Claimed]]:
    """Step 1: take up to `limit` due pending rows for this dispatcher (committed)."""
    token = uuid.uuid4().hex
    due = (select(Notification.id)
           .where(Notification.status == "pending", Notification.next_attempt_at <= now)
           .order_by(Notification.next_attempt_at, Notification.id).limit(limit))
    if is_postgres():
        # Lock the chosen rows first, then update exactly those: inside `UPDATE … WHERE id IN
        # (… LIMIT n FOR UPDATE SKIP LOCKED)` PostgreSQL may rescan the subquery and take more.
        ids = list(db.session.scalars(due.with_for_update(skip_locked=True)))
        chosen = Notification.id.in_(ids)
    else:
        # SQLite has one writer at a time: one UPDATE statement claims atomically.
        ids = None
        chosen = Notification.id.in_(due.scalar_subquery())
    if ids != []:
        db.session.execute(
            update(Notification)
            # status is re-checked on the row itself, so a row another claimer took is not retaken.
            .where(chosen, Notification.status == "pending")
            .values(status="sending", claim_token=token, claimed_at=now, send_started_at=None)
            .execution_options(synchronize_session=False))
    rows = db.session.execute(
        select(Notification.id, Notification.user_id, User.openid, Notification.template_key,
               Notification.page, Notification.wx_data, Notification.attempts)
        .join(User, User.id == Notification.user_id)
        .where(Notification.claim_token == token).order_by(Notification.id)).all()
    db.session.commit()
    return token, [Claimed(*row) for row in rows]


def deliver(row: Claimed, token: str, now: datetime, stats: DispatchStats) -> str:
    """Steps 2-4 for one claimed row; returns the outcome."""
    outcome = start_send(row, token, now)
    if outcome != "started":
        _count(stats, outcome)
        return outcome
    try:
        result = send_subscribe_message(row)
    except WeChatClientException as exc:
        outcome = _classify(exc.errcode)
        finish(row, token, now, outcome, errcode=exc.errcode, error=f"errcode {exc.errcode}")
    except requests.RequestException as exc:
        outcome = "retry"
        finish(row, token, now, outcome, error=type(exc).__name__)
    except Exception as exc:  # a bug, not WeChat: whether it sent is unknown, so never resend
        log.exception("reminder %s: send failed unexpectedly", row.id)
        outcome = "failed"
        finish(row, token, now, outcome, error=f"outcome_unknown: {type(exc).__name__}")
    else:
        outcome = "sent"
        finish(row, token, now, outcome, errcode=0, msgid=str(result.get("msgid") or ""))
    if outcome == "retry" and row.attempts + 1 >= MAX_ATTEMPTS:
        outcome = "failed"
    _count(stats, outcome)
    return outcome


def start_send(row: Claimed, token: str, now: datetime) -> str:
    """Step 2: fence the send and use a consent, in one committed transaction."""
    started = db.session.execute(
        update(Notification)
        .where(Notification.id == row.id, Notification.claim_token == token,
               Notification.status == "sending", Notification.send_started_at.is_(None))
        .values(send_started_at=now)
        .execution_options(synchronize_session=False)).rowcount
    if started != 1:
        db.session.rollback()
        return "lost"
    if not row.template_key or not consents.take_consent(row.user_id, row.template_key):
        _set(row, token, status="no_consent", send_started_at=None, claim_token=None)
        db.session.commit()
        return "no_consent"
    db.session.commit()
    return "started"


def send_subscribe_message(row: Claimed) -> dict:
    """Step 3. The page carries the inbox id so opening the message marks it read."""
    from app.wechat.client import wechat_client

    page = row.page or "pages/notifications/index"
    page = f"{page}{'&' if '?' in page else '?'}nid={row.id}"
    return wechat_client().send_subscribe_message(
        row.openid, consents.template_id(row.template_key), subscribe_data(row.wx_data), page)


def finish(row: Claimed, token: str, now: datetime, outcome: str, errcode: int | None = None,
           msgid: str | None = None, error: str | None = None) -> None:
    """Step 4: record what WeChat answered, in one short transaction fenced by the claim."""
    attempts = row.attempts + 1
    if outcome == "sent":
        _set(row, token, status="sent", sent_at=now, wx_errcode=0, wx_msgid=msgid, attempts=attempts,
             last_error=None)
    elif outcome == "refused":
        _set(row, token, status="no_consent", wx_errcode=errcode, attempts=attempts, last_error=error)
        consents.clear_consents(row.user_id, row.template_key)
    elif outcome == "retry" and attempts < MAX_ATTEMPTS:
        _set(row, token, status="pending", wx_errcode=errcode, attempts=attempts, last_error=error,
             next_attempt_at=now + backoff(attempts), claim_token=None, claimed_at=None,
             send_started_at=None)
        consents.give_back_consent(row.user_id, row.template_key)
    else:
        _set(row, token, status="failed", wx_errcode=errcode, attempts=attempts, last_error=error)
        consents.give_back_consent(row.user_id, row.template_key)
    db.session.commit()
    if outcome != "sent":
        log.info("reminder %s: %s (errcode=%s, attempt %s)", row.id, outcome, errcode, attempts)


def _classify(errcode: int | None) -> str:
    if errcode == REFUSED:
        return "refused"
    if errcode in FINAL_ERRCODES:
        return "failed"
    return "retry"  # -1 系统繁忙, HTTP 5xx (errcode None), rate limits, token trouble


def _set(row: Claimed, token: str, **values) -> None:
    db.session.execute(
        update(Notification).where(Notification.id == row.id, Notification.claim_token == token)
        .values(**values).execution_options(synchronize_session=False))


def _count(stats: DispatchStats, outcome: str) -> None:
    key = {"sent": "sent", "no_consent": "no_consent", "refused": "no_consent", "retry": "retried",
           "failed": "failed", "lost": "lost"}[outcome]
    setattr(stats, key, getattr(stats, key) + 1)
