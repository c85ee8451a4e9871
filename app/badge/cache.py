"""The public badge: the one invalidation call, the records loader and a two-level cache.

Invalidation: any change to a stall's records (credentials, pledges, membership of its operator,
complaints, claim) calls `changed(...)` in the same transaction; it moves the stalls' badge
versions on, and the cache is keyed by (token, version), so the next read after the commit
cannot serve a badge older than the change.

The projection: `changed()` also computes the badge of those stalls from the facts (seeing the
writer's own uncommitted changes) and stores the ready JSON and HTML bytes with their version
and `changes_at` in `stall_badges`, in the same transaction. A read is then one indexed query of
ready bytes; past `changes_at` (an expiry, a complaint leaving its 90-day window) time alone has
changed the badge, so the read recomputes and stores it (and the sweep does so ahead of reads).
A stall with no row yet (created in bulk) is computed on its first read.

Per worker, the latest entry of each token is kept and trusted for VERSION_RECHECK after its
version was confirmed, so a burst of scans of one sticker needs no query at all."""
from __future__ import annotations

import json
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from app.badge.compute import compute_badge
from app.badge.facts import fact
from app.badge.models import StallBadge
from app.badge.render import render_html, render_json
from app.core import metrics
from app.core.caches import process_cache
from app.core.reader import as_datetime, query, reading_in_transaction
from app.core.time import utcnow
from app.extensions import db

LOCAL_ENTRIES = 4096  # per worker; a badge is ~1–3 KB, so a few MB at most
SAFETY_TTL = timedelta(minutes=10)  # bounds the harm of a change that forgot to invalidate
VERSION_RECHECK = 0.25  # seconds a worker trusts a confirmed version before asking again
KINDS = ("json", "html")
BROWSER_MAX_AGE = 30  # seconds; a reissue or review shows in a consumer's browser soon after


# -- invalidation: the one call writers make ------------------------------------------------------
RECOMPUTE_IN_WRITER_UP_TO = 50  # stalls; a wider change marks their stored badges stale instead


def changed(*, stall_id: int | None = None, merchant_id: int | None = None, owner_id: int | None = None,
            market_id: int | None = None) -> None:
    """A writer changed what the badge of these stalls shows (one stall, every stall of an
    entity, of every entity a user owns, or of a market): in the writer's transaction their
    versions move on and their projections are recomputed, so the first read after the commit
    serves the new badge; this worker forgets them now and again once the transaction commits
    (other workers see the new version at their next check, within VERSION_RECHECK). A change
    to more than RECOMPUTE_IN_WRITER_UP_TO stalls (a market renamed) marks their stored
    badges stale in one statement: each is recomputed at its first read, or by the sweep."""
    tokens = fact("bump")(stall_id=stall_id, merchant_id=merchant_id, owner_id=owner_id, market_id=market_id)
    forget_tokens(tokens)
    now = utcnow()
    if len(tokens) > RECOMPUTE_IN_WRITER_UP_TO:
        db.session.execute(update(StallBadge).where(StallBadge.token.in_(tokens))
                           .values(changes_at=now, version=StallBadge.version + 1)
                           .execution_options(synchronize_session=False))
        return
    with reading_in_transaction():
        for token in tokens:
            _store(token, now, db.session.execute)


def forget_tokens(tokens) -> None:
    """This worker drops these tokens' badges now and again when the transaction commits (a
    voided token's page must stop showing the badge at once)."""
    local_cache.forget(tokens)
    db.session.info.setdefault("badge_tokens", set()).update(tokens)


@event.listens_for(Session, "after_commit")
def _forget_committed_changes(session) -> None:
    tokens = session.info.pop("badge_tokens", None)
    if tokens:
        local_cache.forget(tokens)


@event.listens_for(Session, "after_rollback")
def _drop_rolled_back_changes(session) -> None:
    session.info.pop("badge_tokens", None)


# -- loading records ------------------------------------------------------------------------------
class StallGone(Exception):
    """The token is not a live stall's (the caller decides between 404 and 410)."""


def load_records(token: str, now: datetime):
    """(BadgeRecords, version, stall id) of the live stall with `token`, from the facts the
    features publish (app.badge.facts)."""
    from app.badge.compute import BadgeRecords

    stall = fact("stall")(token, now)
    if stall is None:
        raise StallGone(token)
    credentials, pledge, party, exemplar = (), None, None, None
    if stall.merchant_id is not None:
        credentials = fact("credentials")(stall.merchant_id, token)
        pledge = fact("pledge")(stall.merchant_id, now)
        party = fact("party")(stall.owner_id)
        exemplar = fact("exemplar")(stall.stall_id, stall.merchant_id, now)
    records = BadgeRecords(token=token, stall_number=stall.number, market_name=stall.market_name,
                           merchant_name=stall.merchant_name, merchant_kind=stall.merchant_kind,
                           operator_name=stall.operator_name, credentials=credentials, pledge=pledge,
                           party=party, upheld_complaints_at=stall.upheld_complaints_at,
                           trading_rules=stall.trading_rules, exemplar=exemplar)
    return records, stall.version, stall.stall_id


# -- the projection -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stored:
    version: int
    changes_at: datetime | None
    json: bytes
    html: bytes


def _store(token: str, now: datetime, execute) -> Stored:
    """Compute the badge of `token` and upsert its row with `execute` (the session's, in a
    writer's transaction; a short transaction of its own on a read)."""
    records, version, stall_id = load_records(token, now)
    badge = compute_badge(records, now)
    stored = Stored(version, badge["changes_at"], render_json(badge), render_html(badge))
    values = {"token": token, "version": version, "changes_at": stored.changes_at, "computed_at": now,
              "verdict_level": badge.get("verdict_level"), "body_json": stored.json, "body_html": stored.html}
    insert = _dialect_insert(db.engine)(StallBadge).values(stall_id=stall_id, **values)
    execute(insert.on_conflict_do_update(index_elements=["stall_id"], set_=values))
    return stored


def _dialect_insert(engine):
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


_STORED_SQL = "SELECT version, changes_at, body_{kind} FROM stall_badges WHERE token = ?"


def stored_hit(kind: str, token: str, now: datetime, engine=None) -> "Entry | None":
    """The stored bytes when there is a row still true at `now`: one indexed query, and no app
    context needed when `engine` is given (the fast path)."""
    rows = query(_STORED_SQL.format(kind=kind), (token,), engine=engine)
    if not rows:
        return None
    version, changes_at, body = rows[0]
    changes_at = as_datetime(changes_at)
    if changes_at is not None and changes_at <= now:
        return None
    return Entry(version, _expires_at(changes_at, now), bytes(body))


def stored_entry(kind: str, token: str, now: datetime, engine=None) -> "Entry":
    """One indexed query of ready bytes; computed and stored first when there is no row yet or
    its changes_at has passed. Raises StallGone for a token that is not a live stall's."""
    entry = stored_hit(kind, token, now, engine)
    if entry is not None:
        count_hit("stored")
        return entry
    with db.engine.begin() as connection:
        stored = _store(token, now, connection.execute)
    MISSES.inc()
    return Entry(stored.version, _expires_at(stored.changes_at, now), getattr(stored, kind))


def _expires_at(changes_at: datetime | None, now: datetime) -> datetime:
    return min(changes_at, now + SAFETY_TTL) if changes_at is not None else now + SAFETY_TTL


def rebuild(tokens, now: datetime | None = None, progress=None) -> int:
    """Store the badge of each token, one short transaction per token (after a bulk import or
    a migration; `flask badge rebuild`). Tokens that are not a live stall's are skipped.
    Returns how many were stored; `progress(n)` is called after each."""
    now = now or utcnow()
    tokens = list(tokens)
    stored = 0
    for token in tokens:
        try:
            with db.engine.begin() as connection:
                _store(token, now, connection.execute)
            stored += 1
        except StallGone:
            pass
        if progress is not None:
            progress(1)
    local_cache.forget(tokens)
    return stored


def sweep(now: datetime | None = None) -> int:
    """Recompute the stored badges whose changes_at has passed, ahead of their next read.
    Returns how many."""
    now = now or utcnow()
    tokens = list(db.session.scalars(select(StallBadge.token).where(StallBadge.changes_at <= now)))
    for token in tokens:
        try:
            with db.engine.begin() as connection:
                _store(token, now, connection.execute)
        except StallGone:
            continue
    local_cache.forget(tokens)
    return len(tokens)


# -- the cache ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    version: int
    expires_at: datetime  # naive UTC: the badge's changes_at, or the safety TTL
    body: bytes


class LocalCache:
    """A bounded LRU of the latest entry per (kind, token); thread-safe for threaded servers.

    An entry whose version was confirmed against the database less than VERSION_RECHECK ago
    is served without asking again: a burst of scans of one sticker then costs no database
    round trip, and a change made in another worker shows within that interval (this worker's
    own changes are forgotten at once). Expiry moments (changes_at) are always exact."""

    def __init__(self, size: int = LOCAL_ENTRIES) -> None:
        self.size = size
        self._data: OrderedDict[tuple[str, str], tuple[Entry, float]] = OrderedDict()
        self._lock = threading.Lock()

    def fresh(self, key: tuple[str, str], now: datetime) -> Entry | None:
        """The entry if its version was confirmed within VERSION_RECHECK and it has not expired."""
        with self._lock:
            item = self._data.get(key)
            if item is None or now >= item[0].expires_at or time.monotonic() - item[1] >= VERSION_RECHECK:
                return None
            self._data.move_to_end(key)
            return item[0]

    def put(self, key: tuple[str, str], entry: Entry) -> None:
        with self._lock:
            self._data[key] = (entry, time.monotonic())
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def forget(self, tokens) -> None:
        with self._lock:
            for token in tokens:
                for kind in KINDS:
                    self._data.pop((kind, token), None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


local_cache = process_cache("badge_pages", LocalCache())

# Each badge read served counts once: a hit of this worker's memory or of the stored projection,
# or a miss (computed from the records and stored). Hit ratio = hits / (hits + misses).
HITS = metrics.counter("xgz_badge_cache_hits_total", "Public badge reads served ready-made, by level (memory, stored)",
                       ("level",))
MISSES = metrics.counter("xgz_badge_cache_misses_total", "Public badge reads that had to compute the badge")


def count_hit(level: str) -> None:
    HITS.labels(level).inc()


def cache_enabled() -> bool:
    setting = current_app.config.get("BADGE_CACHE") or os.environ.get("BADGE_CACHE", "on")
    return str(setting).lower() not in ("off", "0", "false", "no")


def cached(kind: str, token: str, engine=None) -> tuple[Entry, datetime]:
    """The rendered badge for `token` (`kind`: json or html): from this worker's memory while its
    version was confirmed within VERSION_RECHECK, else from the projection (one query). Raises
    StallGone."""
    now = utcnow()
    enabled = cache_enabled()
    if enabled:
        entry = local_cache.fresh((kind, token), now)
        if entry is not None:
            count_hit("memory")
            return entry, now
    entry = stored_entry(kind, token, now, engine)
    if enabled:
        local_cache.put((kind, token), entry)
    return entry, now


def badge_json(token: str) -> tuple[bytes, int]:
    """Serialised public badge and the browser max-age in seconds."""
    entry, now = cached("json", token)
    return entry.body, max_age(entry, now)


def respond(kind: str, token: str, if_none_match: str | None) -> tuple[int, list, bytes]:
    """A badge read (raises StallGone)."""
    entry, now = cached(kind, token)
    return answer(kind, entry, now, if_none_match)


def badge_dict(token: str) -> dict[str, Any]:
    """The public badge as a dict (for lists that show each stall's verdict)."""
    body, _ = badge_json(token)
    return json.loads(body)


def max_age(entry: Entry, now: datetime) -> int:
    return max(0, min(BROWSER_MAX_AGE, int((entry.expires_at - now).total_seconds())))


# -- response headers, shared by the Flask views and the WSGI fast path -----------------------------
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; form-action 'none'"


def etag(entry: Entry) -> str:
    """The entry's version and the instant it stops being true: the bytes of a version can
    still change when time passes its changes_at (an expiry), so both name them."""
    return f'"v{entry.version}-{int(entry.expires_at.replace(tzinfo=None).timestamp())}"'


def answer(kind: str, entry: Entry, now: datetime, if_none_match: str | None) -> tuple[int, list, bytes]:
    """(status, headers, body) of a badge read, for the Flask views and the WSGI fast path
    alike: 200 with the bytes, or 304 when the client (or nginx's proxy_cache revalidating)
    already holds this version."""
    tag = etag(entry)
    headers = response_headers(kind, max_age(entry, now))
    headers.append(("ETag", tag))
    if if_none_match and (if_none_match.strip() == "*" or tag in [t.strip() for t in if_none_match.split(",")]):
        return 304, headers, b""
    return 200, headers, entry.body


def response_headers(kind: str, max_age_seconds: int) -> list[tuple[str, str]]:
    headers = [("Cache-Control", f"public, max-age={max_age_seconds}")]
    if kind == "html":
        # (X-Content-Type-Options: nosniff comes with every response, from app.core.frame)
        headers += [("Content-Type", "text/html; charset=utf-8"), ("Content-Security-Policy", PAGE_CSP)]
    else:
        headers.append(("Content-Type", "application/json"))
    return headers
