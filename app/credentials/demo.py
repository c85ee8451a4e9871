"""Demo licence and food permit, verified, with generated placeholder photos, for stall A-01."""
from __future__ import annotations

import io
from datetime import date, timedelta

from PIL import Image, ImageDraw
from sqlalchemy import select

from app.badge import cache as badge_cache
from app.core import storage
from app.core.time import local_today, utcnow
from app.credentials.models import Credential
from app.extensions import db


def _placeholder_photo(title: str, number: str) -> bytes:
    """A plain picture standing in for a photographed document (no font download needed)."""
    image = Image.new("RGB", (800, 560), (250, 246, 232))
    draw = ImageDraw.Draw(image)
    draw.rectangle((20, 20, 779, 539), outline=(170, 40, 40), width=8)
    draw.rectangle((60, 70, 740, 130), fill=(170, 40, 40))
    draw.text((80, 90), f"{title} (demo)", fill=(255, 255, 255))
    draw.text((80, 180), number, fill=(40, 40, 40))
    for y in range(240, 480, 40):
        draw.line((80, y, 720, y), fill=(200, 190, 170), width=3)
    draw.ellipse((560, 380, 700, 520), outline=(200, 30, 30), width=6)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _ensure(merchant, manager, kind: str, number: str, issuer: str, valid_until: date | None, title: str) -> None:
    exists = db.session.scalar(select(Credential.id).where(Credential.merchant_id == merchant.id,
                                                           Credential.kind == kind))
    if exists is not None:
        return
    db.session.add(Credential(
        merchant_id=merchant.id, kind=kind, number=number, issuer=issuer,
        valid_from=date(2023, 5, 8), valid_until=valid_until, long_term=valid_until is None,
        photo_key=storage.store_photo(_placeholder_photo(title, number)), status="verified",
        submitted_by_id=merchant.owner_id, reviewed_by_id=manager.id, reviewed_at=utcnow(),
        review_reason="演示数据"))
    db.session.flush()
    badge_cache.changed(merchant_id=merchant.id)


def seed(ctx: dict) -> None:
    merchant, manager = ctx.get("merchant"), ctx.get("demo-manager")
    if merchant is None or manager is None:
        return
    _ensure(merchant, manager, "business_licence", merchant.uscc, "梧州市万秀区市场监督管理局", None,
            "Business licence")
    _ensure(merchant, manager, "food_business", "JY14504030012345", "梧州市万秀区市场监督管理局",
            local_today() + timedelta(days=3 * 365), "Food business permit")
