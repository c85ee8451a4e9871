"""Markets (专业市场), business entities (经营主体) and stalls (摊位)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.db import TimestampMixin
from app.extensions import db

__all__ = ["Market", "Merchant", "Stall", "MARKET_KINDS", "MERCHANT_KINDS"]

MARKET_KINDS = ("农贸市场", "服装市场", "建材市场", "小商品市场", "综合市场", "其他")
MERCHANT_KINDS = ("个体工商户", "小微企业")


class Market(TimestampMixin, db.Model):
    __tablename__ = "markets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"), nullable=False, index=True)
    address: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), nullable=False, default="综合市场")
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    stalls: Mapped[list["Stall"]] = relationship(back_populates="market", lazy="raise_on_sql")


class Merchant(TimestampMixin, db.Model):
    """A business entity (经营主体): 个体工商户 or 小微企业, owned by the user who created it."""

    __tablename__ = "merchants"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    uscc: Mapped[str] = mapped_column(String(18), nullable=False, index=True)  # 统一社会信用代码
    operator_name: Mapped[str] = mapped_column(String(64), nullable=False)


class Stall(TimestampMixin, db.Model):
    __tablename__ = "stalls"

    id: Mapped[int] = mapped_column(primary_key=True)
    market_id: Mapped[int] = mapped_column(ForeignKey("markets.id"), nullable=False, index=True)
    number: Mapped[str] = mapped_column(String(32), nullable=False)
    # Public token on the sticker: random base62, 10–32 chars (fits a wxacode scene).
    token: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    # Bumped by every change to the stall's records; keys the public badge cache.
    badge_version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    token_issued_at: Mapped[datetime | None] = mapped_column(DateTime)

    market: Mapped[Market] = relationship(back_populates="stalls", lazy="joined")

    __table_args__ = (UniqueConstraint("market_id", "number", name="uq_stalls_market_number"),)
