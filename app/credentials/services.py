"""Licences and permits: submission with a photo, review, and who may see the photos."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from app.badge import cache as badge_cache
from app.core.review import decide, decision_reason
from app.core import audit, storage
from app.core.db import get_or_404
from app.core.errors import APIError, NotFound
from app.credentials import errors as _errors  # noqa: F401  registers this feature's codes
from app.credentials.models import CREDENTIAL_KINDS, LICENCE_KIND, Credential
from app.extensions import db
from app.markets.models import Merchant
from app.markets.services import authorize_over_merchant, owned_merchant, view_merchant
from app.markets.uscc import is_valid_uscc, normalize


def _check_validity(data: dict) -> None:
    long_term = bool(data.get("long_term"))
    until, since = data.get("valid_until"), data.get("valid_from")
    if long_term == (until is not None):
        raise APIError(code="CREDENTIAL_VALIDITY_INVALID", details={"fields": ["valid_until", "long_term"]})
    if until is not None and since is not None and until < since:
        raise APIError(code="CREDENTIAL_VALIDITY_INVALID", message="有效期截止日期不能早于起始日期",
                       details={"fields": ["valid_from", "valid_until"]})


def _check_number(merchant: Merchant, kind: str, number: str) -> str:
    """A 营业执照's number is the entity's 统一社会信用代码."""
    if kind != LICENCE_KIND:
        return number.strip()
    code = normalize(number)
    if not is_valid_uscc(code):
        raise APIError(code="USCC_INVALID", details={"field": "number"})
    if code != merchant.uscc:
        raise APIError(code="LICENCE_USCC_MISMATCH", details={"field": "number"})
    return code


def submit_credential(actor, merchant_id: int, data: dict, photo_bytes: bytes | None) -> Credential:
    merchant = owned_merchant(actor, merchant_id)
    _check_validity(data)
    number = _check_number(merchant, data["kind"], data["number"])
    if not photo_bytes:
        raise APIError(code="PHOTO_REQUIRED", details={"field": "photo"})
    photo_key = storage.store_photo(photo_bytes)
    credential = Credential(
        merchant_id=merchant.id, kind=data["kind"], number=number, issuer=data["issuer"].strip(),
        valid_from=data.get("valid_from"), valid_until=None if data.get("long_term") else data["valid_until"],
        long_term=bool(data.get("long_term")), photo_key=photo_key, status="pending",
        submitted_by_id=actor.id,
    )
    db.session.add(credential)
    db.session.flush()
    badge_cache.changed(merchant_id=merchant.id)
    return credential


def list_credentials(actor, merchant_id: int) -> list[Credential]:
    merchant = view_merchant(actor, merchant_id)
    return list(db.session.scalars(select(Credential).where(Credential.merchant_id == merchant.id)
                                   .order_by(Credential.id.desc())))


def get_credential(credential_id: int) -> Credential:
    return get_or_404(Credential, credential_id, "CREDENTIAL_NOT_FOUND")


def review_credential(actor, credential_id: int, decision: str, reason: str | None) -> Credential:
    """By the manager of a market where the entity holds a stall, or a regulator of its region."""
    credential = get_credential(credential_id)
    merchant = db.session.get(Merchant, credential.merchant_id)
    try:
        role = authorize_over_merchant(actor, merchant, include_pending=False)
    except APIError as exc:
        if exc.code == "MERCHANT_NOT_FOUND":
            raise NotFound(code="CREDENTIAL_NOT_FOUND")
        raise
    reason = decision_reason(decision, reason)
    decide(credential, actor, "pending", "verified" if decision == "approve" else "rejected", reason,
           "CREDENTIAL_ALREADY_REVIEWED")
    badge_cache.changed(merchant_id=merchant.id)
    audit.record(f"credential.{decision}", "credential", credential.id, actor=actor, actor_role=role,
                 before={"status": "pending"},
                 after={"status": credential.status, "kind": credential.kind, "number": credential.number},
                 reason=reason)
    return credential


def credential_photo(actor, credential_id: int, thumb: bool = False) -> Path:
    """The photo for its owner and the managers/regulators covering the entity's stalls."""
    credential = get_credential(credential_id)
    merchant = db.session.get(Merchant, credential.merchant_id)
    if merchant.owner_id != actor.id:
        try:
            authorize_over_merchant(actor, merchant)
        except APIError as exc:
            if exc.code == "MERCHANT_NOT_FOUND":
                raise NotFound(code="CREDENTIAL_NOT_FOUND")
            raise
    return storage.photo_path(credential.photo_key, thumb)


def public_photo(token: str, photo_key: str, thumb: bool = False) -> Path:
    """Anyone may see the photo of a verified document of the entity holding the stall (its URL
    carries a random 128-bit key besides the stall's token)."""
    from app.markets.models import Stall

    verified = db.session.scalar(
        select(Credential.id).join(Stall, Stall.merchant_id == Credential.merchant_id).where(
            Stall.token == token, Credential.photo_key == photo_key, Credential.status == "verified"))
    if verified is None:
        raise NotFound(code="PHOTO_NOT_FOUND")
    return storage.photo_path(photo_key, thumb)


def kind_label(kind: str) -> str:
    return CREDENTIAL_KINDS.get(kind, kind)
