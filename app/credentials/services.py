"""Licences and permits: submission with a photo, review, and who may see the photos."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select

from app.badge import cache as badge_cache
from app.core.review import decide, decision_reason
from app.core import audit, storage
from app.core.db import get_or_404
from app.core.errors import APIError, NotFound
from app.core.objectstore import StoredObject
from app.core.time import local_today
from app.credentials import errors as _errors  # noqa: F401  registers this feature's codes
from app.credentials.models import CREDENTIAL_KINDS, LICENCE_KIND, Credential
from app.extensions import db
from app.markets.models import Merchant
from app.markets.services import authorize_over_merchant, owned_merchant, view_merchant
from app.markets.uscc import is_valid_uscc, normalize
from app.reminders import notices


EXPIRING_SOON_DAYS = 30  # an upload expiring this soon is accepted with a warning


def _check_validity(data: dict, today: date) -> None:
    long_term = bool(data.get("long_term"))
    until, since = data.get("valid_until"), data.get("valid_from")
    if long_term == (until is not None):
        raise APIError(code="CREDENTIAL_VALIDITY_INVALID", details={"fields": ["valid_until", "long_term"]})
    if until is not None and since is not None and until < since:
        raise APIError(code="CREDENTIAL_VALIDITY_INVALID", message="有效期截止日期不能早于起始日期",
                       details={"fields": ["valid_from", "valid_until"]})
    _refuse_expired(until, today)


def _refuse_expired(until: date | None, today: date) -> None:
    """An expired document proves nothing: it is neither accepted nor verified."""
    if until is not None and until < today:
        raise APIError(code="CREDENTIAL_EXPIRED",
                       message=f"证照已于 {until:%Y-%m-%d} 过期，请上传换发后的新证照",
                       details={"fields": {"valid_until": [f"已过期（{until:%Y-%m-%d}）"]}})


def expiry_warning(credential: Credential, today: date) -> dict | None:
    """For the uploader: a document that expires within EXPIRING_SOON_DAYS is taken, with a nudge."""
    until = credential.valid_until
    if until is None or credential.long_term or (until - today).days > EXPIRING_SOON_DAYS:
        return None
    days = (until - today).days
    return {"code": "CREDENTIAL_EXPIRING_SOON", "days_left": days,
            "message": f"证照将于 {until:%Y-%m-%d} 到期（还有 {days} 天），请尽快办理换证并重新上传"}


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
    today = local_today()
    _check_validity(data, today)
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
    credential.warning = expiry_warning(credential, today)  # answered with the upload, not stored
    return credential


def list_credentials(actor, merchant_id: int) -> list[Credential]:
    merchant = view_merchant(actor, merchant_id)
    return list(db.session.scalars(select(Credential).where(Credential.merchant_id == merchant.id)
                                   .order_by(Credential.id.desc())))


def get_credential(credential_id: int) -> Credential:
    return get_or_404(Credential, credential_id, "CREDENTIAL_NOT_FOUND")


def _for_reviewer(actor, credential_id: int) -> tuple[Credential, Merchant, str]:
    """The credential, its entity, and the role under which `actor` decides on it: the manager
    of a market where the entity holds a stall, or a regulator of its region. Anyone else
    cannot tell it exists (404)."""
    credential = get_credential(credential_id)
    merchant = db.session.get(Merchant, credential.merchant_id)
    try:
        role = authorize_over_merchant(actor, merchant, include_pending=False)
    except APIError as exc:
        if exc.code == "MERCHANT_NOT_FOUND":
            raise NotFound(code="CREDENTIAL_NOT_FOUND")
        raise
    return credential, merchant, role


def review_credential(actor, credential_id: int, decision: str, reason: str | None) -> Credential:
    """By the manager of a market where the entity holds a stall, or a regulator of its region."""
    credential, merchant, role = _for_reviewer(actor, credential_id)
    reason = decision_reason(decision, reason)
    if decision == "approve":
        _refuse_expired(credential.valid_until, local_today())
    decide(credential, actor, "pending", "verified" if decision == "approve" else "rejected", reason,
           "CREDENTIAL_ALREADY_REVIEWED")
    badge_cache.changed(merchant_id=merchant.id)
    audit.record(f"credential.{decision}", "credential", credential.id, actor=actor, actor_role=role,
                 before={"status": "pending"},
                 after={"status": credential.status, "kind": credential.kind, "number": credential.number},
                 reason=reason)
    _tell_owner(merchant, credential, reason)
    return credential


def revoke_credential(actor, credential_id: int, reason: str) -> Credential:
    """A verified document withdrawn (found forged, superseded, cancelled by the issuer): the
    badge stops showing it at once; the entity's owner is told why; audited."""
    credential, merchant, role = _for_reviewer(actor, credential_id)
    reason = decision_reason("revoke", reason)
    decide(credential, actor, "verified", "revoked", reason, "CREDENTIAL_NOT_VERIFIED")
    badge_cache.changed(merchant_id=merchant.id)
    audit.record("credential.revoke", "credential", credential.id, actor=actor, actor_role=role,
                 before={"status": "verified"}, after={"status": "revoked"}, reason=reason)
    _tell_owner(merchant, credential, reason)
    return credential


def _tell_owner(merchant: Merchant, credential: Credential, reason: str | None) -> None:
    label = kind_label(credential.kind)
    verdict = {"verified": "审核通过，已在亮照页公示", "rejected": "未通过审核", "revoked": "已被撤销，不再公示"}
    notices.tell(merchant.owner_id, kind="credential_decision", subject=f"credential:{credential.id}",
                 outcome=credential.status, title=f"{label}审核结果",
                 body=f"{merchant.name}的{label}（{credential.number}）{verdict[credential.status]}。",
                 page=f"pages/merchant/credentials?merchant_id={merchant.id}", at=credential.reviewed_at,
                 reason=reason if credential.status != "verified" else None)


def credential_photo(actor, credential_id: int, thumb: bool = False) -> StoredObject:
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
    return storage.read_photo(credential.photo_key, thumb)


def public_photo(token: str, photo_key: str, thumb: bool = False) -> StoredObject:
    """Anyone may see the photo of a verified document of the entity holding the stall (its URL
    carries a random 128-bit key besides the stall's token)."""
    from app.markets.models import Stall

    verified = db.session.scalar(
        select(Credential.id).join(Stall, Stall.merchant_id == Credential.merchant_id).where(
            Stall.token == token, Credential.photo_key == photo_key, Credential.status == "verified"))
    if verified is None:
        raise NotFound(code="PHOTO_NOT_FOUND")
    return storage.read_photo(photo_key, thumb)


def kind_label(kind: str) -> str:
    return CREDENTIAL_KINDS.get(kind, kind)
