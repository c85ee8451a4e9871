"""Sends pending outbox rows as WeChat subscribe messages, each dedupe key at most once.

A row goes pending -> sending -> sent | no_consent | failed (or back to pending for a retry).
Rows move in batches (DISPATCH_BATCH_SIZE), each step one short transaction, and the WeChat
calls sit between two of them, never inside one ("call, then write"):

1. claim: pending rows due now get status=sending, a fresh claim_token and claimed_at.
   PostgreSQL picks them with FOR UPDATE SKIP LOCKED, so concurrent dispatchers split the work;
   SQLite runs one claimer (the scheduler's leader lock) and the claim is one UPDATE statement.
2. start: one transaction for the batch sets `send_started_at` only WHERE claim_token is still
   ours and it is still NULL, and takes a consent for every row it fenced. Committed before any
   call. This is the fence: whoever flips send_started_at is the only one that may call WeChat.
3. call WeChat for the fenced rows from a small thread pool (DISPATCH_WORKERS; the process's
   one client and its shared access token), at most DISPATCH_MAX_PER_SECOND calls started in
   any one second of this process. While they are out, the next batch is claimed and fenced
   (steps 1-2) and its calls queued behind them.
4. finish: one transaction records every row's outcome, each UPDATE fenced by claim_token.

Crash policy. A row found in `sending` after its lease (LEASE) belongs to a dead dispatcher:
- send_started_at IS NULL: the crash came before step 2 committed, so WeChat was never called
  for it; the row goes back to pending and is sent once.
- send_started_at set: the crash came between steps 2 and 4 and nobody can know whether WeChat
  delivered (it has no idempotency key). We choose at most once: the row is marked failed with
  last_error "outcome_unknown" and never sent again; the inbox entry is there either way. The
  window is two batches of calls long (step 2 fences a whole batch, and the next one is fenced
  while the calls of the first are out), so a crash there leaves up to two batches
  (2 x DISPATCH_BATCH_SIZE rows) with an unknown outcome, some of which WeChat never saw.
Retries (WeChat -1, HTTP 5xx, timeouts) back off exponentially: 1, 2, 4, 8, 16 minutes, then
failed. 43101 is final: status no_consent and the user's ledger for that template is zeroed.
An expired access token is refreshed once and the call retried by the WeChat client itself.

WeChat's limits: subscribeMessage.send has a daily count per appid and no documented per-second
limit. 45009 (daily quota reached) stops the run: that row and every row of the batch not yet
called go back to pending for after local midnight, their attempts and consents untouched.
45011 (minute quota) stops the run the same way, the batch back in a minute. One run drains
batch after batch until nothing is due or DISPATCH_MAX_SECONDS have passed (the scheduler runs it
every minute, max_instances=1)."""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests
from flask import current_app
from sqlalchemy import bindparam, select, update
from wechatpy.exceptions import WeChatClientException

from app.core.db import is_postgres
from app.core.time import local_midnight_utc, local_today, utcnow
from app.extensions import db
from app.identity.models import User
from app.reminders import consents
from app.reminders.models import Notification, SubscriptionConsent
from app.reminders.outbox import subscribe_data

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)  # >> one batch of calls at WECHAT_TIMEOUT_SECONDS each
CLAIM_BATCH = 100  # DISPATCH_BATCH_SIZE: 100 measured ~20 % faster than 50; a crash leaves up to two batches unknown
MAX_ATTEMPTS = 6
FIRST_BACKOFF = timedelta(minutes=1)
MAX_BACKOFF = timedelta(hours=1)
REFUSED = 43101
DAILY_QUOTA = 45009   # reach max api daily quota limit
MINUTE_QUOTA = 45011  # api minute-quota reach limit
# WeChat errors that a later attempt cannot fix: invalid openid, template, data, page.
FINAL_ERRCODES = {40003, 40037, 47003, 41028, 41029, 41030}


@dataclass
class DispatchStats:
    claimed: int = 0
    sent: int = 0
    no_consent: int = 0
    retried: int = 0
    failed: int = 0
    deferred: int = 0  # put back untouched because WeChat's daily or minute quota was reached
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


@dataclass(frozen=True)
class Outcome:
    """What one fenced row's call came to. kind: sent, refused, retry, failed, deferred."""

    row: Claimed
    kind: str
    errcode: int | None = None
    msgid: str | None = None
    error: str | None = None


def backoff(attempts: int) -> timedelta:
    """Delay before the next try after `attempts` failed calls: 1, 2, 4, 8 … minutes."""
    return min(FIRST_BACKOFF * (2 ** max(attempts - 1, 0)), MAX_BACKOFF)


class RateCap:
    """At most `per_second` calls start in any one-second window, shared by the pool's threads
    (a sliding window of start times: no burst above the cap at a window's edge)."""

    def __init__(self, per_second: int) -> None:
        self.per_second = max(1, int(per_second))
        self.starts: deque[float] = deque()
        self.lock = threading.Lock()

    def wait(self) -> None:
        while True:
            with self.lock:
                now = time.monotonic()
                while self.starts and now - self.starts[0] >= 1.0:
                    self.starts.popleft()
                if len(self.starts) < self.per_second:
                    self.starts.append(now)
                    return
                delay = 1.0 - (now - self.starts[0])
            time.sleep(max(delay, 0.001))


class Halt:
    """Set by the first quota error of a run: the calls not made yet are not made."""

    def __init__(self) -> None:
        self.errcode: int | None = None
        self.lock = threading.Lock()

    def set(self, errcode: int) -> None:
        with self.lock:
            if self.errcode != DAILY_QUOTA:  # the daily quota outranks the minute quota
                self.errcode = errcode

    def __bool__(self) -> bool:
        return self.errcode is not None


def dispatch(now: datetime | None = None, batch_size: int | None = None, max_rows: int | None = None,
             max_seconds: float | None = None) -> DispatchStats:
    """Reclaim stale claims, then claim, fence, send and record due rows batch by batch until
    none is due, `max_rows` were claimed, `max_seconds` passed, or WeChat's quota is reached."""
    config = current_app.config
    now = now or utcnow()
    batch_size = batch_size or config.get("DISPATCH_BATCH_SIZE", CLAIM_BATCH)
    deadline = time.monotonic() + (max_seconds if max_seconds is not None
                                   else config.get("DISPATCH_MAX_SECONDS", 50.0))
    cap = RateCap(config.get("DISPATCH_MAX_PER_SECOND", 1000))
    halt = Halt()
    stats = DispatchStats()
    reclaim_stale(now, stats)
    app = current_app._get_current_object()
    with ThreadPoolExecutor(max_workers=config.get("DISPATCH_WORKERS", 8),
                            thread_name_prefix="reminder-send") as pool:
        # Two batches overlap: while the calls of one are out, the next is claimed, fenced and
        # queued behind them; then the first one's outcomes are recorded.
        in_flight = None
        while True:
            queued = None
            limit = batch_size if max_rows is None else min(batch_size, max_rows - stats.claimed)
            if not halt and limit > 0 and time.monotonic() < deadline:
                token, rows = claim_batch(now, limit)
                if rows:
                    stats.claimed += len(rows)
                    started = start_batch(rows, token, now, stats)
                    queued = (token, [pool.submit(_call, app, row, cap, halt) for row in started])
            if in_flight is not None:
                record_batch(*in_flight, now, stats, halt)
            if queued is None:
                break
            in_flight = queued
    if halt:
        log.warning("reminder dispatch stopped: WeChat quota reached (errcode %s); %s deferred",
                    halt.errcode, stats.deferred)
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


def record_batch(token: str, calls: list, now: datetime, stats: DispatchStats, halt: Halt) -> list[Outcome]:
    """Wait for a batch's calls, then step 4 for all of them; returns their outcomes."""
    outcomes = [call.result() for call in calls]
    if outcomes:
        finish_batch(outcomes, token, now, halt)
    for outcome in outcomes:
        _count(stats, outcome)
    return outcomes


def start_batch(rows: list[Claimed], token: str, now: datetime, stats: DispatchStats) -> list[Claimed]:
    """Step 2: fence the batch and take its consents, in one committed transaction. Returns
    the rows that may be sent; the others are lost claims or have no consent (inbox only)."""
    table = Notification.__table__
    fenced = set(db.session.scalars(
        update(table)
        .where(table.c.id.in_([row.id for row in rows]), table.c.claim_token == token,
               table.c.status == "sending", table.c.send_started_at.is_(None))
        .values(send_started_at=now).returning(table.c.id)))
    stats.lost += len(rows) - len(fenced)
    candidates = [r for r in rows if r.id in fenced and r.template_key]
    # The ledger rows are locked in one global order (user, template), so two dispatchers
    # taking consents of the same users never wait on each other in a cycle.
    granted = consents.take_consents([(r.user_id, r.template_key) for r in candidates])
    ready = [row for row, ok in zip(candidates, granted) if ok]
    refused = sorted({r.id for r in rows if r.id in fenced} - {row.id for row in ready})
    if refused:
        db.session.execute(
            update(table).where(table.c.id.in_(refused), table.c.claim_token == token)
            .values(status="no_consent", send_started_at=None, claim_token=None))
        stats.no_consent += len(refused)
    db.session.commit()
    return ready


def _call(app, row: Claimed, cap: RateCap, halt: Halt) -> Outcome:
    """Step 3 for one row, in a pool thread: nothing here touches the database."""
    if halt:
        return Outcome(row, "deferred")
    cap.wait()
    if halt:
        return Outcome(row, "deferred")
    with app.app_context():
        try:
            result = send_subscribe_message(row)
        except WeChatClientException as exc:
            kind = _classify(exc.errcode)
            if kind == "deferred":
                halt.set(exc.errcode)
            return Outcome(row, kind, errcode=exc.errcode, error=f"errcode {exc.errcode}")
        except requests.RequestException as exc:
            return Outcome(row, "retry", error=type(exc).__name__)
        except Exception as exc:  # a bug, not WeChat: whether it sent is unknown, so never resend
            log.exception("reminder %s: send failed unexpectedly", row.id)
            return Outcome(row, "failed", error=f"outcome_unknown: {type(exc).__name__}")
    return Outcome(row, "sent", errcode=0, msgid=str(result.get("msgid") or ""))


def send_subscribe_message(row: Claimed) -> dict:
    """The page carries the inbox id so opening the message marks it read."""
    from app.wechat.client import wechat_client

    page = row.page or "pages/notifications/index"
    page = f"{page}{'&' if '?' in page else '?'}nid={row.id}"
    return wechat_client().send_subscribe_message(
        row.openid, consents.template_id(row.template_key), subscribe_data(row.wx_data), page)


def finish_batch(outcomes: list[Outcome], token: str, now: datetime, halt: Halt) -> None:
    """Step 4: record every outcome of the batch in one transaction, each row fenced by the
    claim; consents WeChat did not use go back to their users' ledgers, 43101 zeroes one."""
    groups: dict[str, list[dict]] = {}
    give_back: dict[tuple[int, str], int] = {}
    refused: set[tuple[int, str]] = set()
    resume = _resume_at(now, halt)
    for outcome in outcomes:
        row, kind = outcome.row, outcome.kind
        attempts = row.attempts + 1
        if kind == "retry" and attempts >= MAX_ATTEMPTS:
            kind = "failed"
        values = {"b_id": row.id}
        if kind == "sent":
            values.update(b_msgid=outcome.msgid, b_attempts=attempts, b_sent=now)
        elif kind == "deferred":  # not WeChat's answer about this message: no attempt used
            code = outcome.errcode or halt.errcode
            values.update(b_errcode=code, b_error=f"quota: errcode {code}", b_next=resume)
        elif kind == "retry":
            values.update(b_errcode=outcome.errcode, b_attempts=attempts, b_error=outcome.error,
                          b_next=now + backoff(attempts))
        else:  # refused, failed
            values.update(b_errcode=outcome.errcode, b_attempts=attempts, b_error=outcome.error)
        groups.setdefault(kind, []).append(values)
        pair = (row.user_id, row.template_key)
        if kind == "refused":
            refused.add(pair)
        elif kind != "sent":
            give_back[pair] = give_back.get(pair, 0) + 1
    for kind, params in groups.items():
        db.session.execute(_FINISH[kind](token), params)
    _settle_consents(give_back, refused)
    db.session.commit()
    for outcome in outcomes:
        if outcome.kind != "sent":
            log.info("reminder %s: %s (errcode=%s, attempt %s)", outcome.row.id, outcome.kind,
                     outcome.errcode, outcome.row.attempts + (outcome.kind != "deferred"))


def _resume_at(now: datetime, halt: Halt) -> datetime:
    """When deferred rows are due again: after local midnight for the daily quota (WeChat counts
    per Beijing day), a minute later for the minute quota."""
    if halt.errcode == DAILY_QUOTA:
        return local_midnight_utc(local_today(now) + timedelta(days=1))
    return now + FIRST_BACKOFF


def _finish_statement(**values):
    table = Notification.__table__

    def build(token: str):
        return (update(table).where(table.c.id == bindparam("b_id"), table.c.claim_token == token)
                .values(**values))
    return build


_FINISH = {
    "sent": _finish_statement(status="sent", sent_at=bindparam("b_sent"),
                              wx_errcode=0, wx_msgid=bindparam("b_msgid"),
                              attempts=bindparam("b_attempts"), last_error=None),
    "refused": _finish_statement(status="no_consent", wx_errcode=bindparam("b_errcode"),
                                 attempts=bindparam("b_attempts"), last_error=bindparam("b_error")),
    "failed": _finish_statement(status="failed", wx_errcode=bindparam("b_errcode"),
                                attempts=bindparam("b_attempts"), last_error=bindparam("b_error")),
    "retry": _finish_statement(status="pending", wx_errcode=bindparam("b_errcode"),
                               attempts=bindparam("b_attempts"), last_error=bindparam("b_error"),
                               next_attempt_at=bindparam("b_next"), claim_token=None, claimed_at=None,
                               send_started_at=None),
    "deferred": _finish_statement(status="pending", wx_errcode=bindparam("b_errcode"),
                                  last_error=bindparam("b_error"), next_attempt_at=bindparam("b_next"),
                                  claim_token=None, claimed_at=None, send_started_at=None),
}


def _settle_consents(give_back: dict[tuple[int, str], int], refused: set[tuple[int, str]]) -> None:
    """Give back the consents WeChat did not use and zero the refused templates, one ledger row
    at a time in (user, template) order (the order start_batch takes them in). A refusal wins
    over a give-back of the same template in the same batch: the user said no."""
    for user_id, key in sorted(set(give_back) | refused):
        if not key:
            continue
        if (user_id, key) in refused:
            consents.clear_consents(user_id, key)
        else:
            db.session.execute(
                update(SubscriptionConsent)
                .where(SubscriptionConsent.user_id == user_id, SubscriptionConsent.template_key == key)
                .values(remaining=SubscriptionConsent.remaining + give_back[(user_id, key)], updated_at=utcnow())
                .execution_options(synchronize_session=False))


def _classify(errcode: int | None) -> str:
    if errcode == REFUSED:
        return "refused"
    if errcode in (DAILY_QUOTA, MINUTE_QUOTA):
        return "deferred"
    if errcode in FINAL_ERRCODES:
        return "failed"
    return "retry"  # -1 系统繁忙, HTTP 5xx (errcode None), token trouble


def _count(stats: DispatchStats, outcome: Outcome) -> None:
    kind = outcome.kind
    if kind == "retry" and outcome.row.attempts + 1 >= MAX_ATTEMPTS:
        kind = "failed"
    key = {"sent": "sent", "refused": "no_consent", "retry": "retried", "failed": "failed",
           "deferred": "deferred"}[kind]
    setattr(stats, key, getattr(stats, key) + 1)
