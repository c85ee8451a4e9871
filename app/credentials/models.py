"""Licences and permits (亮照亮证): a business entity's 营业执照 and 许可证, each with a photo and a
review by the market manager or regulator."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.content import COMMENT, PROFILE, public_text
from app.core.db import TimestampMixin
from app.extensions import db

__all__ = ["Credential", "CREDENTIAL_KINDS", "CREDENTIAL_STATUSES", "LICENCE_KIND"]

LICENCE_KIND = "business_licence"
# kind -> label shown to people. business_licence is 亮照; every other kind is a permit (亮证).
CREDENTIAL_KINDS = {
    "business_licence": "营业执照",
    "food_business": "食品经营许可证",
    "food_production": "食品生产许可证",
    "small_food_workshop": "小作坊登记证",
    "tobacco_retail": "烟草专卖零售许可证",
    "drug_business": "药品经营许可证",
    "measuring_instrument": "计量器具检定证书",
    "other": "其他许可证",
}
CREDENTIAL_STATUSES = ("pending", "verified", "rejected")


class Credential(TimestampMixin, db.Model):
    __tablename__ = "credentials"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    number: Mapped[str] = mapped_column(String(64), nullable=False, info=public_text(PROFILE))
    issuer: Mapped[str] = mapped_column(String(100), nullable=False, info=public_text(PROFILE))
    valid_from: Mapped[date | None] = mapped_column(Date)
    # Last local day in force; NULL together with long_term=True means 长期.
    valid_until: Mapped[date | None] = mapped_column(Date, index=True)
    long_term: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # Random storage key of the re-encoded photo under UPLOAD_DIR; never derived from user input.
    photo_key: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    submitted_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime)
    review_reason: Mapped[str | None] = mapped_column(Text, info=public_text(COMMENT))

    __table_args__ = (Index("ix_credentials_merchant_status", "merchant_id", "status"),)

    @property
    def label(self) -> str:
        return CREDENTIAL_KINDS.get(self.kind, self.kind)
