"""Login, phone binding and role grants."""
from __future__ import annotations

import re

from sqlalchemy import delete, select
from sqlalchemy.orm.attributes import set_committed_value

from app.core import audit
from app.core.review import compare_and_set
from app.identity.auth import Target, authorize, issue_token, scope_target, token_claims
from app.core.db import get_or_404, insert_ignore
from app.core.errors import APIError
from app.core.ids import typed_int
from app.core.time import utcnow
from app.extensions import db
from app.identity.models import ROLES, SCOPE_TYPES, RoleGrant, User, VoidedToken, WechatSession
from app.wechat.client import wechat_client, wechat_errors

_PHONE = re.compile(r"^\+?\d{6,15}$")
SELF_SERVICE_ROLES = ("merchant", "rider")


def display_name(user) -> str:
    """The name organisers see: the real name, else the WeChat nickname, else a neutral label."""
    return user.real_name or user.nickname or f"用户{user.id}"


def mask_name(name: str | None) -> str:
    """王*军, 王*, 欧**锋: enough to recognise oneself, not to identify someone else."""
    if not name:
        return "匿名"
    if len(name) <= 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def surname_only(name: str | None) -> str:
    """张三丰 -> 张*: what the anonymous public sees of a person (a pledge's signer on the badge):
    that someone signed, not who. Stricter than mask_name, which is for people who know them."""
    name = (name or "").strip()
    return f"{name[0]}*" if name else ""


def public_name(user, viewer_id: int | None) -> str:
    """How a user appears to people who are not their organisers: their own name to
    themselves, the real name if they chose to show it, otherwise masked."""
    if user.id == viewer_id or (user.show_name and user.real_name):
        return display_name(user)
    return mask_name(user.real_name or user.nickname)


def persistent(user: User) -> User:
    """The user's row in this request's session, to change it: the authenticated user may be a
    detached copy from the per-worker principal cache."""
    return user if user in db.session else db.session.get(User, user.id)


def update_profile(user, data: dict):
    """The user's real name (content-checked on write, as all public text) and whether others
    may see it unmasked."""
    user = persistent(user)
    if "real_name" in data:
        user.real_name = data["real_name"]
    if "show_name" in data:
        user.show_name = data["show_name"]
    db.session.flush()
    return user


def mask_phone(phone: str | None) -> str | None:
    """138****8000: enough for the user to recognise, useless to anyone else."""
    if not phone:
        return None
    if len(phone) >= 7:
        return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]
    return "*" * len(phone)


def find_or_create_user(openid: str, unionid: str | None = None) -> User:
    user = db.session.scalar(select(User).where(User.openid == openid))
    if user is None:
        # Two first logins of one person can race; the unique openid decides.
        insert_ignore(User, {"openid": openid, "unionid": unionid, "token_version": 1,
                             "created_at": utcnow(), "updated_at": utcnow()}, ["openid"])
        user = db.session.scalar(select(User).where(User.openid == openid))
    if unionid and not user.unionid:
        user.unionid = unionid
    return user


def login_with_code(code: str) -> tuple[User, str, int]:
    """wx.login code -> code2session -> our user and a bearer token. WeChat is called before
    any write, so a WeChat fault leaves nothing behind."""
    with wechat_errors():
        session = wechat_client().code_to_session(code)
    user = find_or_create_user(session["openid"], session.get("unionid"))
    stored = db.session.get(WechatSession, user.id)
    if stored is None:
        db.session.add(WechatSession(user_id=user.id, session_key=session["session_key"]))
    else:
        stored.session_key = session["session_key"]
    user.last_login_at = utcnow()
    db.session.flush()
    token, ttl = issue_token(user)
    return user, token, ttl


def bind_phone(user: User, code: str) -> User:
    with wechat_errors({40029: "WECHAT_PHONE_CODE_INVALID"}):
        phone = wechat_client().get_phone_number(code)
    if not _PHONE.match(phone or ""):
        raise APIError(code="WECHAT_PHONE_CODE_INVALID")
    user = persistent(user)
    user.phone = phone
    db.session.flush()
    return user


def revoke_tokens(user: User) -> None:
    """Logout everywhere: every token issued before now stops working."""
    user = persistent(user)
    user.token_version += 1
    db.session.flush()


def log_out(user: User, token: str, everywhere: bool) -> None:
    """End this token's session, or every session of the user; audited. Takes effect on the
    next request in every worker (the user's principal counter moves at commit)."""
    claims = token_claims(token)
    if everywhere or not claims.get("jti"):  # a token without an id can only go with the rest
        revoke_tokens(user)
    else:
        insert_ignore(VoidedToken, {"jti": claims["jti"], "user_id": user.id, "expires_at": claims["expires_at"]},
                      ["jti"])
    audit.record("auth.logout", "user", user.id, actor=user, after={"all_tokens": bool(everywhere)})


def purge_voided_tokens(now) -> int:
    """Voided tokens past their own expiry need no record any more."""
    return db.session.execute(delete(VoidedToken).where(VoidedToken.expires_at <= now)).rowcount or 0


def parse_scope(scope: str | None) -> tuple[str, str]:
    """'region:450400' -> ('region', '450400'); None -> ('', '')."""
    if not scope:
        return "", ""
    kind, _, value = scope.partition(":")
    if kind not in SCOPE_TYPES or not value:
        raise APIError(code="SCOPE_INVALID", details={"scope": scope})
    if kind == "region":
        from app.core.regions import Region

        if db.session.get(Region, value) is None:
            raise APIError(code="REGION_NOT_FOUND", details={"scope": scope})
    elif typed_int(value) is None:  # "²".isdigit(): a row id is ASCII digits an INTEGER holds
        raise APIError(code="SCOPE_INVALID", details={"scope": scope})
    return kind, value


def grant_role(user: User, role: str, scope: str | None, *, actor: User | None = None,
               actor_role: str | None = None, reason: str | None = None) -> RoleGrant:
    """Give `role` over `scope` (idempotent: an existing or revoked grant is reactivated); audited."""
    if role not in ROLES:
        raise APIError(code="ROLE_UNKNOWN", details={"role": role, "allowed": list(ROLES)})
    scope_type, scope_id = parse_scope(scope)
    grant = db.session.scalar(select(RoleGrant).where(
        RoleGrant.user_id == user.id, RoleGrant.role == role,
        RoleGrant.scope_type == scope_type, RoleGrant.scope_id == scope_id))
    before = None
    if grant is None:
        grant = RoleGrant(user_id=user.id, role=role, scope_type=scope_type, scope_id=scope_id,
                          granted_by_id=getattr(actor, "id", None))
        db.session.add(grant)
    elif grant.revoked_at is not None:
        before = {"revoked_at": grant.revoked_at.isoformat()}
        grant.revoked_at = None
        grant.granted_at = utcnow()
        grant.granted_by_id = getattr(actor, "id", None)
    else:
        return grant
    db.session.flush()
    _reload_grants(user)
    audit.record("role.grant", "user", user.id, actor=actor, actor_role=actor_role, before=before,
                 after={"role": role, "scope": grant.scope}, reason=reason)
    return grant


def revoke_role(grant: RoleGrant, *, actor: User | None, actor_role: str | None, reason: str) -> RoleGrant:
    """Withdraw a grant (409 ROLE_ALREADY_REVOKED when someone did first); audited. The holder's
    next request, in any worker, no longer carries the role."""
    compare_and_set(grant, RoleGrant.revoked_at.is_(None), {"revoked_at": utcnow()}, "ROLE_ALREADY_REVOKED")
    _reload_grants(grant.user)
    audit.record("role.revoke", "user", grant.user_id, actor=actor, actor_role=actor_role,
                 before={"role": grant.role, "scope": grant.scope}, after=None, reason=reason)
    return grant


def revoke_grant(actor: User, grant_id: int, reason: str) -> RoleGrant:
    """POST /role-grants/{id}/revoke: an admin revokes any grant; a regulator one whose scope
    lies in their region (grants without a scope, such as admin or the self-service roles,
    only an admin)."""
    grant = get_or_404(RoleGrant, grant_id, "ROLE_GRANT_NOT_FOUND")
    target = scope_target(grant.scope_type, grant.scope_id) if grant.scope_type else None
    if grant.scope_type and target is None:  # its market or org is gone: only an admin
        target = Target(region_code="-")
    role = authorize(actor, ["admin"]) if target is None else authorize(actor, ["regulator"], target)
    return revoke_role(grant, actor=actor, actor_role=role, reason=reason)


def find_grant(user: User, role: str, scope: str | None) -> RoleGrant:
    scope_type, scope_id = parse_scope(scope)
    grant = db.session.scalar(select(RoleGrant).where(
        RoleGrant.user_id == user.id, RoleGrant.role == role,
        RoleGrant.scope_type == scope_type, RoleGrant.scope_id == scope_id))
    if grant is None:
        raise APIError(code="ROLE_GRANT_NOT_FOUND", details={"role": role, "scope": scope})
    return grant


def _reload_grants(user: User) -> None:
    """The user's active grants as of this transaction, on the session's row or on a detached
    copy (the authenticated user of this request)."""
    if user in db.session:
        db.session.expire(user, ["grants"])
    else:
        set_committed_value(user, "grants", list(db.session.scalars(select(RoleGrant).where(
            RoleGrant.user_id == user.id, RoleGrant.revoked_at.is_(None)))))


def ensure_self_service_role(user: User, role: str) -> None:
    """Merchants and riders are roles a user takes on by using the flow, with no scope."""
    if role in SELF_SERVICE_ROLES and role not in {g.role for g in user.grants}:
        grant_role(user, role, None, actor=user, actor_role=role, reason="自助注册")


def appoint_market_manager(actor: User, market, openid: str, reason: str | None) -> RoleGrant:
    """A regulator appoints a manager for a market in their region (the market's region code
    decides the scope check)."""
    role = authorize(actor, ["regulator"], Target(region_code=market.region_code, market_id=market.id))
    manager = find_or_create_user(openid)
    return grant_role(manager, "market_manager", f"market:{market.id}", actor=actor,
                      actor_role=role, reason=reason)


def get_user(user_id: int) -> User:
    return get_or_404(User, user_id, "USER_NOT_FOUND")
