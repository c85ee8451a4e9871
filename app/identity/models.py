"""Users and their role grants (角色与管辖范围)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core import generations
from app.core.content import PROFILE, public_text
from app.core.db import TimestampMixin
from app.core.time import utcnow
from app.extensions import db

ROLES = ("admin", "regulator", "market_manager", "branch_secretary", "merchant", "rider")
SCOPE_TYPES = ("region", "market", "org")
ROLE_LABELS = {
    "admin": "系统管理员", "regulator": "市场监管人员", "market_manager": "市场管理方",
    "branch_secretary": "支部书记", "merchant": "经营户", "rider": "骑手",
}


class User(TimestampMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    unionid: Mapped[str | None] = mapped_column(String(64), index=True)
    nickname: Mapped[str | None] = mapped_column(String(64), info=public_text(PROFILE))
    real_name: Mapped[str | None] = mapped_column(String(64), info=public_text(PROFILE))
    # Full number stays server-side; responses show mask_phone(phone).
    phone: Mapped[str | None] = mapped_column(String(20))
    # Whether people who are not the user's organisers may see the real name (leaderboards);
    # otherwise they see it masked (王*军).
    show_name: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())
    # Bumped to revoke every token issued before (logout everywhere, role removal).
    token_version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)

    grants: Mapped[list["RoleGrant"]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin",
        primaryjoin="and_(User.id == RoleGrant.user_id, RoleGrant.revoked_at.is_(None))",
        viewonly=True,
    )


class WechatSession(db.Model):
    """The session_key from code2session: needed server-side for decrypting wx data, never
    returned, never logged. One row per user, replaced on each login."""

    __tablename__ = "wechat_sessions"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    session_key: Mapped[str] = mapped_column(String(128), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow, nullable=False)

    def __repr__(self) -> str:  # keep the key out of any accidental log of the object
        return f"<WechatSession user_id={self.user_id}>"


class RoleGrant(db.Model):
    """A role with a scope: region:<行政区划代码>, market:<id>, org:<id>, or none (admin, or the
    self-service roles merchant and rider)."""

    __tablename__ = "role_grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    # "" rather than NULL for "no scope", so the unique constraint also holds for unscoped roles.
    scope_type: Mapped[str] = mapped_column(String(16), default="", nullable=False)
    scope_id: Mapped[str] = mapped_column(String(32), default="", nullable=False)
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    granted_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)

    user: Mapped[User] = relationship(foreign_keys=[user_id], back_populates="grants")

    __table_args__ = (
        UniqueConstraint("user_id", "role", "scope_type", "scope_id", name="uq_role_grants_user_role_scope"),
        # "who manages market 7 / is secretary of org 3" — reminders and digests ask this.
        Index("ix_role_grants_scope", "role", "scope_type", "scope_id"),
    )

    @property
    def status(self) -> str:
        return "revoked" if self.revoked_at is not None else "active"

    @property
    def scope(self) -> str | None:
        return f"{self.scope_type}:{self.scope_id}" if self.scope_type else None


class VoidedToken(db.Model):
    """A token logged out before its expiry (POST /auth/logout): its jti, until it would have
    expired anyway (the daily purge removes it then)."""

    __tablename__ = "voided_tokens"

    jti: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)


# A changed user, grant or voided token changes who the user is to every worker at once
# (app.identity.auth.PrincipalCache keeps a verified token only while this counter holds).
PRINCIPAL = "principal"
generations.track(User, topic=PRINCIPAL, by="id")
generations.track(RoleGrant, topic=PRINCIPAL, by="user_id")
generations.track(VoidedToken, topic=PRINCIPAL, by="user_id")
