"""The public badge: invalidation hooks, the records loader and a two-level cache.

Invalidation: any change to a stall's records (credentials, pledges, membership of its operator,
complaints, claim) calls one of the `invalidate_*` hooks in the same transaction; they bump
`Stall.badge_version`, and the cache is keyed by (token, version), so the next read after the
commit cannot serve a badge older than the change.

Reads: one indexed query fetches the stall's current version (the only database work of a warm
read); pre-serialised bytes for (token, version) come from a small per-worker LRU, then Redis when
configured. An entry also carries the badge's `changes_at` (the next expiry, the end of a 90-day
complaint window, the pledge's end): past that instant it is recomputed, because time alone
changes the badge without bumping the version. Redis is an accelerator: when it is down the
database answers (kv degrades to the in-process store)."""
from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from flask import current_app
from sqlalchemy import select, text, update

from app.core.time import utcnow
from app.extensions import db, kv
from app.markets.models import Stall

LOCAL_ENTRIES = 4096  # per worker; a badge is ~1–3 KB, so a few MB at most
SAFETY_TTL = timedelta(minutes=10)  # bounds the harm of a change that forgot to invalidate
REDIS_TTL_SECONDS = 24 * 3600
BROWSER_MAX_AGE = 30  # seconds; a reissue or review shows in a consumer's browser soon after


# -- invalidation (the only entry points other features use) ------------------------------------
def invalidate_stall(stall_id: int) -> None:
    db.session.execute(update(Stall).where(Stall.id == stall_id)
                       .values(badge_version=Stall.badge_version + 1))


def invalidate_merchant(merchant_id: int) -> None:
    """Every stall the business entity holds."""
    db.session.execute(update(Stall).where(Stall.merchant_id == merchant_id)
                       .values(badge_version=Stall.badge_version + 1))


def invalidate_owner(user_id: int) -> None:
    """Every stall of every entity the user owns (e.g. their party membership changed)."""
    from app.markets.models import Merchant

    merchant_ids = db.session.query(Merchant.id).filter(Merchant.owner_id == user_id).scalar_subquery()
    db.session.execute(update(Stall).where(Stall.merchant_id.in_(merchant_ids))
                       .values(badge_version=Stall.badge_version + 1))


# -- loading records ------------------------------------------------------------------------------
class StallGone(Exception):
    """The token is not a live stall's (the caller decides between 404 and 410)."""


def load_records(token: str, now: datetime):
    """(BadgeRecords, version) of the live stall with `token`, in three indexed Core queries
    plus the pledge and party hooks."""
    from app.credentials.badge import UPHELD_WINDOW, BadgeRecords, CredentialRecord
    from app.credentials.models import CREDENTIAL_KINDS, Credential
    from app.markets.models import Feedback, Market, Merchant
    from app.orgs.queries import party_member_operator
    from app.pledges.queries import pledge_badge_entry

    row = db.session.execute(
        select(Stall.id, Stall.number, Stall.merchant_id, Stall.badge_version, Stall.trading_rules,
               Market.name, Merchant.name, Merchant.kind, Merchant.operator_name, Merchant.owner_id)
        .join(Market, Market.id == Stall.market_id)
        .outerjoin(Merchant, Merchant.id == Stall.merchant_id)
        .where(Stall.token == token)).first()
    if row is None:
        raise StallGone(token)
    (stall_id, number, merchant_id, version, rules, market_name, merchant_name, merchant_kind,
     operator_name, owner_id) = row
    credentials, pledge, party = (), None, None
    if merchant_id is not None:
        base = current_app.config["PUBLIC_BASE_URL"]
        credentials = tuple(
            CredentialRecord(kind=kind, label=CREDENTIAL_KINDS.get(kind, kind), number=cred_number,
                             issuer=issuer, status=status, valid_from=valid_from,
                             valid_until=valid_until, long_term=long_term,
                             photo_url=f"{base}/api/v1/public/stalls/{token}/photos/{photo_key}.jpg"
                             if status == "verified" else None)
            for kind, cred_number, issuer, status, valid_from, valid_until, long_term, photo_key
            in db.session.execute(
                select(Credential.kind, Credential.number, Credential.issuer, Credential.status,
                       Credential.valid_from, Credential.valid_until, Credential.long_term,
                       Credential.photo_key)
                .where(Credential.merchant_id == merchant_id)
                .order_by(Credential.id.desc()).limit(100)))
        pledge = pledge_badge_entry(merchant_id, now)
        party = party_member_operator(owner_id)
    upheld = tuple(db.session.scalars(
        select(Feedback.reviewed_at).where(Feedback.stall_id == stall_id, Feedback.status == "upheld",
                                           Feedback.reviewed_at > now - UPHELD_WINDOW)))
    records = BadgeRecords(token=token, stall_number=number, market_name=market_name,
                           merchant_name=merchant_name, merchant_kind=merchant_kind,
                           operator_name=operator_name, credentials=credentials, pledge=pledge,
                           party=party, upheld_complaints_at=upheld, trading_rules=rules)
    return records, version


def current_badge(token: str, now: datetime | None = None) -> tuple[dict[str, Any], int]:
    """The badge computed from the database, no cache: (badge with naive changes_at, version)."""
    from app.credentials.badge import compute_badge

    now = now or utcnow()
    records, version = load_records(token, now)
    return compute_badge(records, now), version


# -- the cache ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    version: int
    expires_at: datetime  # naive UTC: the badge's changes_at, or the safety TTL
    body: bytes


class LocalCache:
    """A bounded LRU of the latest entry per (kind, token); thread-safe for threaded servers."""

    def __init__(self, size: int = LOCAL_ENTRIES) -> None:
        self.size = size
        self._data: OrderedDict[tuple[str, str], Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str], version: int, now: datetime) -> Entry | None:
        with self._lock:
            entry = self._data.get(key)
            if entry is None or entry.version != version or now >= entry.expires_at:
                return None
            self._data.move_to_end(key)
            return entry

    def put(self, key: tuple[str, str], entry: Entry) -> None:
        with self._lock:
            self._data[key] = entry
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


local_cache = LocalCache()

_VERSION_SQL = text("SELECT badge_version FROM stalls WHERE token = :token")


def current_version(token: str) -> int | None:
    """The stall's badge version: one primary-key-like lookup on the unique token index."""
    return db.session.execute(_VERSION_SQL, {"token": token}).scalar()


def cache_enabled() -> bool:
    setting = current_app.config.get("BADGE_CACHE") or os.environ.get("BADGE_CACHE", "on")
    return str(setting).lower() not in ("off", "0", "false", "no")


def _redis_key(kind: str, token: str, version: int) -> str:
    return f"badge:{kind}:{token}:{version}"


def _from_redis(kind: str, token: str, version: int, now: datetime) -> Entry | None:
    raw = kv.get(_redis_key(kind, token, version))
    if not raw:
        return None
    stamp, _, body = raw.partition(b"|")
    try:
        expires_at = datetime.fromisoformat(stamp.decode())
    except (ValueError, UnicodeDecodeError):
        return None
    if now >= expires_at:
        return None
    return Entry(version, expires_at, body)


def _to_redis(kind: str, token: str, entry: Entry, now: datetime) -> None:
    ttl = max(1.0, min(REDIS_TTL_SECONDS, (entry.expires_at - now).total_seconds()))
    kv.set(_redis_key(kind, token, entry.version),
           entry.expires_at.isoformat().encode() + b"|" + entry.body, ttl=ttl)


def cached(kind: str, token: str, render: Callable[[dict[str, Any]], bytes]) -> tuple[Entry, datetime]:
    """The rendered badge for `token` (`kind` names the rendering: json, html), served from the
    cache when its version is current and its changes_at has not passed. Raises StallGone."""
    now = utcnow()
    enabled = cache_enabled()
    if enabled:
        version = current_version(token)
        if version is None:
            raise StallGone(token)
        key = (kind, token)
        entry = local_cache.get(key, version, now)
        if entry is not None:
            return entry, now
        if kv.shared:
            entry = _from_redis(kind, token, version, now)
            if entry is not None:
                local_cache.put(key, entry)
                return entry, now
    badge, version = current_badge(token, now)
    expires_at = now + SAFETY_TTL
    if badge["changes_at"] is not None:
        expires_at = min(expires_at, badge["changes_at"])
    entry = Entry(version, expires_at, render(badge))
    if enabled:
        local_cache.put((kind, token), entry)
        if kv.shared:
            _to_redis(kind, token, entry, now)
    return entry, now


def render_json(badge: dict[str, Any]) -> bytes:
    from app.credentials.badge import public_json

    return json.dumps(public_json(badge), ensure_ascii=False, separators=(",", ":")).encode()


def badge_json(token: str) -> tuple[bytes, int]:
    """Serialised public badge and the browser max-age in seconds."""
    entry, now = cached("json", token, render_json)
    return entry.body, max_age(entry, now)


def badge_dict(token: str) -> dict[str, Any]:
    """The public badge as a dict (for lists that show each stall's verdict)."""
    body, _ = badge_json(token)
    return json.loads(body)


def max_age(entry: Entry, now: datetime) -> int:
    return max(0, min(BROWSER_MAX_AGE, int((entry.expires_at - now).total_seconds())))
