"""Markets (专业市场), business entities (经营主体), stalls (摊位), stall claims, voided sticker
tokens, cached mini-program codes and consumer feedback (反映问题)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.content import COMMENT, PROFILE, public_text
from app.core.db import TimestampMixin
from app.core.ids import base62_token
from app.core.time import utcnow
from app.extensions import db

__all__ = [
    "Market", "Merchant", "Stall", "StallClaim", "VoidedStallToken", "StallCode", "Feedback",
    "MARKET_KINDS", "MERCHANT_KINDS", "CLAIM_STATUSES", "FEEDBACK_CATEGORIES", "FEEDBACK_STATUSES",
]

MARKET_KINDS = ("农贸市场", "服装市场", "建材市场", "小商品市场", "综合市场", "其他")
MERCHANT_KINDS = ("个体工商户", "小微企业")
CLAIM_STATUSES = ("pending", "confirmed", "rejected")
FEEDBACK_CATEGORIES = ("价格不实", "缺斤短两", "商品质量", "证照不符", "服务态度", "食品安全", "其他")
FEEDBACK_STATUSES = ("open", "upheld", "dismissed")


class Market(TimestampMixin, db.Model):
    __tablename__ = "markets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False, info=public_text(PROFILE))
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"), nullable=False, index=True)
    address: Mapped[str | None] = mapped_column(String(200), info=public_text(PROFILE))
    kind: Mapped[str] = mapped_column(String(16), nullable=False, default="综合市场")
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)  # 市场关闭（停业、搬迁）
    # The market's public page /m/<token> (entrance board QR): random base62 like stall tokens.
    token: Mapped[str] = mapped_column(String(32), nullable=False, unique=True, default=lambda: base62_token(12))
    # Bumped by changes to the market's own entries on its public page (its 示范 title); its
    # stalls' badge versions key that page too (app/exemplars/market_page.py).
    page_version: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")

    stalls: Mapped[list["Stall"]] = relationship(back_populates="market", lazy="raise_on_sql")


class Merchant(TimestampMixin, db.Model):
    """A business entity (经营主体): 个体工商户 or 小微企业, owned by the user who created it."""

    __tablename__ = "merchants"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False, info=public_text(PROFILE))
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    uscc: Mapped[str] = mapped_column(String(18), nullable=False, index=True)  # 统一社会信用代码
    operator_name: Mapped[str] = mapped_column(String(64), nullable=False, info=public_text(PROFILE))


class Stall(TimestampMixin, db.Model):
    __tablename__ = "stalls"

    id: Mapped[int] = mapped_column(primary_key=True)
    market_id: Mapped[int] = mapped_column(ForeignKey("markets.id"), nullable=False, index=True)
    number: Mapped[str] = mapped_column(String(32), nullable=False, info=public_text(PROFILE))
    # Public token on the sticker: random base62, 10–32 chars (fits a wxacode scene).
    token: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    # Set when a claim is confirmed; the stall's badge shows this entity's records.
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    # Bumped by every change to the stall's records; keys the public badge cache.
    badge_version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    token_issued_at: Mapped[datetime | None] = mapped_column(DateTime)
    # 亮规则: {"returns": str, "pricing": str, "weighing": str}, shown with the badge.
    trading_rules: Mapped[dict[str, Any] | None] = mapped_column(JSON, info=public_text(PROFILE))
    note: Mapped[str | None] = mapped_column(Text, info=public_text(COMMENT))  # the manager's own note
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)  # 摊位停用

    market: Mapped[Market] = relationship(back_populates="stalls", lazy="joined")

    __table_args__ = (UniqueConstraint("market_id", "number", name="uq_stalls_market_number"),)


class StallClaim(TimestampMixin, db.Model):
    """A merchant's request to hold a stall (摊位认领), confirmed or refused by the market manager.

    `active_stall_id` equals `stall_id` while the claim is pending or confirmed and is NULL once
    refused or released (the tenancy ended): its unique constraint is what keeps a stall to one
    merchant, even under races."""

    __tablename__ = "stall_claims"

    id: Mapped[int] = mapped_column(primary_key=True)
    stall_id: Mapped[int] = mapped_column(ForeignKey("stalls.id"), nullable=False, index=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), nullable=False, index=True)
    active_stall_id: Mapped[int | None] = mapped_column(ForeignKey("stalls.id"), unique=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime)
    review_reason: Mapped[str | None] = mapped_column(Text, info=public_text(COMMENT))
    released_at: Mapped[datetime | None] = mapped_column(DateTime)
    released_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    release_reason: Mapped[str | None] = mapped_column(Text, info=public_text(COMMENT))


class VoidedStallToken(db.Model):
    """A sticker token replaced by a reissue: its page says 此二维码已作废 and points nowhere."""

    __tablename__ = "voided_stall_tokens"

    token: Mapped[str] = mapped_column(String(32), primary_key=True)
    stall_id: Mapped[int] = mapped_column(ForeignKey("stalls.id"), nullable=False, index=True)
    voided_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    voided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class StallCode(db.Model):
    """A mini-program code (wxacode.getUnlimited) fetched once per token and kept: WeChat
    limits calls, and the code for a token never changes."""

    __tablename__ = "stall_codes"

    token: Mapped[str] = mapped_column(String(32), primary_key=True)
    png: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


class Feedback(db.Model):
    """A consumer's report about a stall (反映问题). Upheld reports show on the badge for 90 days
    from the moment they were upheld."""

    __tablename__ = "stall_feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    stall_id: Mapped[int] = mapped_column(ForeignKey("stalls.id"), nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    category: Mapped[str] = mapped_column(String(16), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False, info=public_text(COMMENT))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime)
    review_reason: Mapped[str | None] = mapped_column(Text, info=public_text(COMMENT))

    __table_args__ = (Index("ix_stall_feedback_stall_status", "stall_id", "status", "reviewed_at"),)
