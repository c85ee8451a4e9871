"""What the credentials publish to the badge: an entity's licences and permits."""
from __future__ import annotations

from flask import current_app

from app.badge.compute import CredentialRecord
from app.badge.facts import provides
from app.core.reader import as_date, query
from app.credentials.models import CREDENTIAL_KINDS

# Plain SQL on the badge reader's connection: this runs on every badge miss.
_CREDENTIALS_SQL = (
    "SELECT kind, number, issuer, status, valid_from, valid_until, long_term, photo_key FROM credentials "
    "WHERE merchant_id = ? ORDER BY id DESC LIMIT 100")


@provides("credentials")
def credential_records(merchant_id: int, token: str) -> tuple[CredentialRecord, ...]:
    photos = f"{current_app.config['PUBLIC_BASE_URL']}/api/v1/public/stalls/{token}/photos/"
    return tuple(
        CredentialRecord(kind=kind, label=CREDENTIAL_KINDS.get(kind, kind), number=number,
                         issuer=issuer, status=status, valid_from=as_date(valid_from),
                         valid_until=as_date(valid_until), long_term=bool(long_term),
                         photo_url=f"{photos}{photo_key}.jpg" if status == "verified" else None)
        for kind, number, issuer, status, valid_from, valid_until, long_term, photo_key
        in query(_CREDENTIALS_SQL, (merchant_id,)))
