"""Rotating check-in codes and the check-in itself (党员签到).

A code is `c1.<activity_id>.<slot>.<mac>`: slot = floor(unix time / 30 s), mac = the first 12
base64url characters (72 bits) of HMAC-SHA256 over activity and slot, keyed from SECRET_KEY
(or, during a key rotation, from one of SECRET_KEY_FALLBACKS). The organiser's phone shows a new
one every 30 s; the current and the previous slot are accepted, so a screenshot forwarded to
someone far away stops working within a minute."""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import math
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, bindparam, func, select, update

from app.activities import errors  # noqa: F401  registers the codes
from app.activities.models import Activity, CheckIn, CheckInRefusal, PointsEntry
from app.core import ratelimit
from app.core.db import insert_ignore_returning, is_postgres
from app.core.errors import APIError
from app.core.geo import haversine_m
from app.core.memo import ImmutableFacts
from app.core.time import utcnow
from app.extensions import db

SLOT_SECONDS = 30
MAC_CHARS = 12
PAYLOAD_VERSION = "c1"
PAYLOAD_MAX = 64
LATE_GRACE = timedelta(minutes=10)
RAW_COORDINATE_RETENTION = timedelta(days=30)
# A fix claiming worse accuracy than this proves nothing about where the phone is (a 100 km
# "accuracy" circle contains any fence): refused, not flagged. Documented in the API.
MAX_ACCURACY_M = 500
# Refused scans of one activity by one user per minute; past it, scans are answered 429 before
# any database work (an honest member with a bad fix needs a handful; successes never count).
REFUSED_SCANS_PER_MINUTE = 12
_EPOCH = datetime(1970, 1, 1)


# -- the code ---------------------------------------------------------------------------------
def slot_of(now: datetime) -> int:
    return int((now - _EPOCH).total_seconds() // SLOT_SECONDS)


def seconds_left_in_slot(now: datetime) -> int:
    elapsed = (now - _EPOCH).total_seconds()
    return max(1, math.ceil((slot_of(now) + 1) * SLOT_SECONDS - elapsed))


@functools.lru_cache(maxsize=16)
def _derived_key(secret: str) -> bytes:
    # Derived rather than SECRET_KEY itself, so a leaked check-in MAC says nothing about tokens.
    return hmac.new(secret.encode(), b"xgz-checkin-code-v1", hashlib.sha256).digest()


def _key() -> bytes:
    return _derived_key(current_app.config["SECRET_KEY"])


def _mac(activity_id: int, slot: int, key: bytes | None = None) -> str:
    digest = hmac.new(key or _key(), f"{activity_id}.{slot}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:MAC_CHARS]


def _mac_matches(activity_id: int, slot: int, mac: str) -> bool:
    """Under SECRET_KEY, or under a key of SECRET_KEY_FALLBACKS (a rotation in progress): the
    code on the projector when the servers restarted with a new key still works. It gets no
    longer than any code, since check_slot applies the same current-or-previous-slot window."""
    if hmac.compare_digest(mac.encode(), _mac(activity_id, slot).encode()):
        return True
    return any(hmac.compare_digest(mac.encode(), _mac(activity_id, slot, _derived_key(old)).encode())
               for old in current_app.config.get("SECRET_KEY_FALLBACKS") or ())


def make_payload(activity_id: int, slot: int) -> str:
    return f"{PAYLOAD_VERSION}.{activity_id}.{slot}.{_mac(activity_id, slot)}"


@dataclass(frozen=True)
class ScannedCode:
    activity_id: int
    slot: int


def parse_payload(payload: str) -> ScannedCode | None:
    """The code's activity and slot when its MAC is right; None when malformed or forged."""
    if not isinstance(payload, str) or len(payload) > PAYLOAD_MAX:
        return None
    parts = payload.strip().split(".")
    if len(parts) != 4 or parts[0] != PAYLOAD_VERSION:
        return None
    _, activity_part, slot_part, mac = parts
    if not (activity_part.isascii() and activity_part.isdigit() and slot_part.isascii() and slot_part.isdigit()):
        return None
    if len(activity_part) > 12 or len(slot_part) > 12:
        return None
    activity_id, slot = int(activity_part), int(slot_part)
    if not _mac_matches(activity_id, slot, mac):
        return None
    return ScannedCode(activity_id, slot)


def current_code(activity: Activity, now: datetime | None = None) -> dict:
    now = now or utcnow()
    slot = slot_of(now)
    return {"payload": make_payload(activity.id, slot), "slot": slot,
            "expires_in": seconds_left_in_slot(now)}


# The organiser's screen shows the code as an <image src>, which sends no bearer header: the
# answer to GET /checkin-code carries a short-lived signed URL for the image instead.
CODE_IMAGE_SALT = "xgz-checkin-code-image-v1"
CODE_IMAGE_SECONDS = 60  # a slot and its grace: the screen asks for a new code every 30 s


def _image_signer():
    """Signs with SECRET_KEY; also verifies URLs signed under SECRET_KEY_FALLBACKS (Flask's
    key-list order: oldest first, the signing key last), still within CODE_IMAGE_SECONDS."""
    from itsdangerous import URLSafeTimedSerializer

    keys = [*(current_app.config.get("SECRET_KEY_FALLBACKS") or ()), current_app.config["SECRET_KEY"]]
    return URLSafeTimedSerializer(keys, salt=CODE_IMAGE_SALT)


def signed_code_image(activity_id: int, slot: int) -> str:
    return _image_signer().dumps([activity_id, slot])


def code_image_payload(signed: str) -> str:
    """The payload a signed image URL stands for: 404 CHECKIN_CODE_IMAGE_INVALID if forged,
    410 CHECKIN_CODE_IMAGE_EXPIRED after CODE_IMAGE_SECONDS."""
    from itsdangerous import BadSignature, SignatureExpired

    try:
        activity_id, slot = _image_signer().loads(signed, max_age=CODE_IMAGE_SECONDS)
    except SignatureExpired:
        raise APIError(code="CHECKIN_CODE_IMAGE_EXPIRED")
    except (BadSignature, ValueError, TypeError):
        raise APIError(code="CHECKIN_CODE_IMAGE_INVALID")
    return make_payload(int(activity_id), int(slot))


def code_png(payload: str) -> bytes:
    """A small 1-bit PNG of the payload for the organiser's screen (the sticker's encoder)."""
    from app.markets.qr import qr_png

    return qr_png(payload, box=10, quiet=2)


@dataclass(frozen=True)
class Place:
    lat: float | None
    lng: float | None
    accuracy_m: float | None


@dataclass(frozen=True)
class LocationVerdict:
    verdict: str  # inside / poor_accuracy / no_geofence
    distance_m: float | None
    flagged: bool


def judge_location(activity: Activity, place: Place) -> LocationVerdict:
    """Inside the fence: accepted. A fix whose accuracy is worse than the radius cannot prove
    either way: accepted if its uncertainty circle reaches the fence, flagged for the organiser."""
    distance = None
    if place.lat is not None and place.lng is not None and activity.lat is not None and activity.lng is not None:
        distance = round(haversine_m(place.lat, place.lng, activity.lat, activity.lng), 1)
    if not activity.has_geofence:
        return LocationVerdict("no_geofence", distance, False)
    if distance is None:
        raise APIError(code="CHECKIN_LOCATION_REQUIRED")
    radius = float(activity.radius_m)
    accuracy = place.accuracy_m
    if accuracy is not None and accuracy > MAX_ACCURACY_M:
        raise APIError(code="CHECKIN_ACCURACY_TOO_POOR", details={"accuracy_m": round(accuracy),
                                                                 "max_accuracy_m": MAX_ACCURACY_M})
    poor = accuracy is not None and accuracy > radius
    if distance <= radius:
        return LocationVerdict("poor_accuracy" if poor else "inside", distance, poor)
    if poor and distance - accuracy <= radius:
        return LocationVerdict("poor_accuracy", distance, True)
    raise APIError(code="CHECKIN_OUTSIDE_AREA", details={"distance_m": round(distance),
                                                         "radius_m": activity.radius_m})


# -- the check-in -----------------------------------------------------------------------------
def find_checkin(activity_id: int, user_id: int) -> CheckIn | None:
    return db.session.scalar(select(CheckIn).where(CheckIn.activity_id == activity_id,
                                                   CheckIn.user_id == user_id))


def status_at(activity: Activity, now: datetime) -> str:
    return "on_time" if now <= activity.starts_at + LATE_GRACE else "late"


def check_window(activity: Activity, now: datetime) -> None:
    from app.core.time import isoformat_local

    if activity.cancelled:
        raise APIError(code="ACTIVITY_CANCELLED", details={"reason": activity.cancel_reason})
    if now < activity.checkin_opens_at:
        raise APIError(code="CHECKIN_NOT_OPEN", details={"opens_at": isoformat_local(activity.checkin_opens_at)})
    if now > activity.checkin_closes_at:
        raise APIError(code="CHECKIN_CLOSED", details={"closed_at": isoformat_local(activity.checkin_closes_at)})


def check_slot(scanned: ScannedCode, now: datetime) -> None:
    current = slot_of(now)
    if scanned.slot not in (current, current - 1):
        raise APIError(code="CHECKIN_CODE_EXPIRED")


@dataclass(frozen=True)
class CheckInRecord:
    """A check-in row as written or found by a scan: what the answer shows and the audit
    needs, without an ORM object to build and track (a burst is mostly these)."""
    id: int
    activity_id: int
    user_id: int
    checked_in_at: datetime
    method: str
    status: str
    distance_m: float | None
    location_verdict: str
    flagged: bool


_RECORD_COLUMNS = tuple(f.name for f in fields(CheckInRecord))


@functools.cache
def _existing_statement():
    table = CheckIn.__table__
    return (select(*(table.c[name] for name in _RECORD_COLUMNS))
            .where(table.c.activity_id == bindparam("activity_id"), table.c.user_id == bindparam("user_id")))


def find_checkin_record(activity_id: int, user_id: int) -> CheckInRecord | None:
    """This user's check-in of the activity: one indexed Core read on the request's connection."""
    row = db.session.connection().execute(
        _existing_statement(), {"activity_id": activity_id, "user_id": user_id}).first()
    return CheckInRecord(*row) if row is not None else None


# A check-in is never updated in what a scan answers, nor deleted: once seen committed it can
# answer every later retry of that user from memory.
_known_checkins = ImmutableFacts("known_checkins", size=50_000, ttl_seconds=3600)


def known_checkin(activity_id: int, user_id: int) -> CheckInRecord | None:
    record = _known_checkins.get((activity_id, user_id))
    if record is None:
        record = find_checkin_record(activity_id, user_id)
        if record is not None:  # read back, so committed by an earlier request
            _known_checkins.put((activity_id, user_id), record)
    return record


def _insert_checkin(values: dict) -> CheckInRecord | None:
    """INSERT … ON CONFLICT DO NOTHING RETURNING the row: the new check-in, or None when this
    user already has one (a retry or a racing duplicate). A cached text() statement: the
    dialects' ON CONFLICT constructs are compiled again on every call."""
    row = insert_ignore_returning(CheckIn, values, ["activity_id", "user_id"], _RECORD_COLUMNS)
    return CheckInRecord(*row) if row is not None else None


def _award_points(activity: Activity, user_id: int, now: datetime) -> None:
    if activity.points <= 0:
        return
    from app.core.db import insert_ignore

    insert_ignore(PointsEntry, {"user_id": user_id, "org_id": activity.org_id, "activity_id": activity.id,
                                "reason": "checkin", "delta": activity.points, "created_at": now},
                  ["user_id", "reason", "activity_id"])


def _enforce_capacity(activity: Activity) -> None:
    """Called after our insert: on PostgreSQL the activity row lock serialises the count of
    racing check-ins; on SQLite our insert already holds the database's write lock."""
    if not activity.capacity:
        return
    if is_postgres():
        db.session.execute(select(Activity.id).where(Activity.id == activity.id).with_for_update())
    count = db.session.scalar(select(func.count()).select_from(CheckIn).where(CheckIn.activity_id == activity.id))
    if count > activity.capacity:
        raise APIError(code="CHECKIN_FULL", details={"capacity": activity.capacity})


def record_checkin(activity: Activity, user_id: int, now: datetime, *, method: str, verdict: LocationVerdict,
                   place: Place | None = None, slot: int | None = None, recorded_by_id: int | None = None,
                   manual_reason: str | None = None) -> tuple[CheckInRecord, bool]:
    """Write the one check-in of (activity, user); returns (check-in, created). The write
    transaction starts here and is kept short: everything before it only reads."""
    row = _insert_checkin({
        "activity_id": activity.id, "user_id": user_id, "checked_in_at": now, "method": method,
        "status": status_at(activity, now), "slot": slot,
        "lat": place.lat if place else None, "lng": place.lng if place else None,
        "accuracy_m": place.accuracy_m if place else None, "distance_m": verdict.distance_m,
        "location_verdict": verdict.verdict, "flagged": verdict.flagged,
        "recorded_by_id": recorded_by_id, "manual_reason": manual_reason,
    })
    if row is None:
        return find_checkin_record(activity.id, user_id), False
    _enforce_capacity(activity)
    _award_points(activity, user_id, now)
    return row, True


def record_refusal(activity_id: int, user_id: int, code: str, now: datetime, place: Place | None,
                   distance_m: float | None = None) -> None:
    """Refused scans are kept for the organiser in a transaction of their own, since the
    request's own transaction rolls back with the refusal: one row per (activity, user,
    reason), counted, with the latest time and place."""
    latest = {"at": now, "lat": place.lat if place else None, "lng": place.lng if place else None,
              "accuracy_m": place.accuracy_m if place else None, "distance_m": distance_m}
    try:
        with db.engine.begin() as connection:
            upsert = _dialect_insert(connection)(CheckInRefusal).values(
                activity_id=activity_id, user_id=user_id, code=code, count=1, **latest)
            connection.execute(upsert.on_conflict_do_update(
                index_elements=["activity_id", "user_id", "code"],
                set_={"count": CheckInRefusal.__table__.c["count"] + 1, **latest}))
    except Exception:  # the log of refusals must never turn a 4xx into a 500
        current_app.logger.warning("could not record check-in refusal %s", code)


def _dialect_insert(connection):
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert


@functools.cache
def _scan_statement():
    """Built once with bind parameters: constructing it (and its cache key) per request cost
    about as much as running it."""
    from app.activities.audience import eligibility_clause

    user_id = bindparam("user_id")
    return (select(Activity, CheckIn, eligibility_clause(user_id).label("eligible"))
            .outerjoin(CheckIn, and_(CheckIn.activity_id == Activity.id, CheckIn.user_id == user_id))
            .where(Activity.id == bindparam("activity_id")))


def load_for_scan(activity_id: int, user_id: int) -> tuple[Activity, CheckIn | None, bool]:
    """The activity, this user's check-in if any, and whether the user is in the activity's
    audience — one round trip, since a check-in burst is mostly this read."""
    row = db.session.execute(_scan_statement(), {"activity_id": activity_id, "user_id": user_id}).first()
    if row is None:
        raise APIError(code="ACTIVITY_NOT_FOUND")
    return row[0], row[1], bool(row[2])


def scan(user, activity_id: int, payload: str, place: Place,
         now: datetime | None = None) -> tuple[CheckIn | CheckInRecord, bool]:
    """A member scans the organiser's code. Returns (check-in, created); a repeat returns the
    first check-in unchanged. Every refusal raises its own code and is recorded."""
    now = now or utcnow()
    user_id = user.id
    scanned = parse_payload(payload)
    if scanned is not None and scanned.activity_id == activity_id:
        # A burst is mostly retries: a valid code for this activity and a check-in already
        # there answer the same at once (the row's foreign key proves the activity exists).
        existing = known_checkin(activity_id, user_id)
        if existing is not None:
            return existing, False
    # A flood of junk scans costs a counter lookup each, not a query and a stored row.
    scanner = f"{activity_id}:{user_id}"
    ratelimit.refuse_if_spent("scan-refusals", scanner, REFUSED_SCANS_PER_MINUTE, 60, code="CHECKIN_RATE_LIMITED")
    activity, existing, eligible = load_for_scan(activity_id, user_id)
    if not activity.has_geofence:
        place = Place(None, None, None)  # no fence to check: keep no location at all
    try:
        if scanned is None:
            raise APIError(code="CHECKIN_CODE_FORGED")
        if scanned.activity_id != activity.id:
            raise APIError(code="CHECKIN_CODE_OTHER_ACTIVITY")
        # A retry of a check-in that already happened answers the same, even once the code or
        # the window has moved on.
        if existing is not None:
            return existing, False
        check_window(activity, now)
        check_slot(scanned, now)
        if not eligible:
            raise APIError(code="CHECKIN_NOT_ELIGIBLE")
        verdict = judge_location(activity, place)
        return record_checkin(activity, user_id, now, method="rotating_qr", verdict=verdict, place=place,
                              slot=scanned.slot)
    except APIError as refusal:
        if refusal.code.startswith(("CHECKIN_", "ACTIVITY_")):
            # Release our write lock first (SQLite) — the refusal is written on another connection.
            db.session.rollback()
            ratelimit.spend("scan-refusals", scanner, 60)
            distance = refusal.details.get("distance_m") if refusal.details else None
            record_refusal(activity_id, user_id, refusal.code, now, place, distance)
        raise


def purge_raw_coordinates(now: datetime | None = None, commit: bool = True) -> int:
    """Drop raw coordinates older than 30 days (distance and verdict stay); a nightly job.
    Returns rows changed."""
    cutoff = (now or utcnow()) - RAW_COORDINATE_RETENTION
    changed = 0
    for model, column in ((CheckIn, CheckIn.checked_in_at), (CheckInRefusal, CheckInRefusal.at)):
        result = db.session.execute(
            update(model).where(column < cutoff)
            .where((model.lat.is_not(None)) | (model.lng.is_not(None)) | (model.accuracy_m.is_not(None)))
            .values(lat=None, lng=None, accuracy_m=None))
        changed += result.rowcount or 0
    if commit:
        db.session.commit()
    return changed
