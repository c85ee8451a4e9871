"""Bearer tokens, the current user, and role-with-scope checks.

A token is itsdangerous-signed {uid, ver}; it expires after AUTH_TOKEN_TTL_SECONDS and dies at
once when the user's token_version is bumped. Authorization is decided next to the route
(`@requires(...)` for the role) and against the object (`authorize(...)` for the scope)."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, Iterable

from flask import current_app, g, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload

from app.core.errors import APIError, Forbidden, OutOfScope, Unauthorized
from app.extensions import db

TOKEN_SALT = "xgz-auth-v1"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=TOKEN_SALT)


def issue_token(user) -> tuple[str, int]:
    ttl = current_app.config["AUTH_TOKEN_TTL_SECONDS"]
    return _serializer().dumps({"uid": user.id, "ver": user.token_version}), ttl


@functools.cache
def _user_with_grants():
    """One round trip for the user and their grants: this runs on every authenticated request.
    Built once: constructing the statement and its cache key cost as much as running it."""
    from app.identity.models import User

    return select(User).options(joinedload(User.grants)).where(User.id == bindparam("uid"))


def user_from_token(token: str):
    try:
        data = _serializer().loads(token, max_age=current_app.config["AUTH_TOKEN_TTL_SECONDS"])
    except SignatureExpired:
        raise APIError(code="TOKEN_EXPIRED")
    except BadSignature:
        raise APIError(code="TOKEN_INVALID")
    if not isinstance(data, dict) or not isinstance(data.get("uid"), int):
        raise APIError(code="TOKEN_INVALID")
    user = db.session.scalars(_user_with_grants(), {"uid": data["uid"]}).unique().first()
    if user is None or user.token_version != data.get("ver"):
        raise APIError(code="TOKEN_INVALID")
    return user


def current_user(optional: bool = False):
    """The authenticated user of this request (cached on g); 401 unless optional."""
    if "current_user" not in g:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            g.current_user = None
        else:
            g.current_user = user_from_token(token.strip())
    if g.current_user is None and not optional:
        raise Unauthorized()
    return g.current_user


@dataclass(frozen=True)
class Target:
    """Where an object sits, for scope checks: its region code, market, organisation
    (with the organisation's ancestors, since a committee's secretary covers its branches)."""

    region_code: str | None = None
    market_id: int | None = None
    org_ids: tuple[int, ...] = field(default_factory=tuple)


def grant_covers(grant, target: Target | None) -> bool:
    from app.markets.regions import region_covers

    if grant.role == "admin" or target is None:
        return True
    if grant.scope_type == "region":
        return region_covers(grant.scope_id, target.region_code)
    if grant.scope_type == "market":
        return target.market_id is not None and str(target.market_id) == grant.scope_id
    if grant.scope_type == "org":
        return any(str(org_id) == grant.scope_id for org_id in target.org_ids)
    return False


def roles_of(user) -> set[str]:
    return {grant.role for grant in user.grants}


def has_role(user, *roles: str) -> bool:
    mine = roles_of(user)
    return "admin" in mine or bool(mine.intersection(roles))


def authorize(user, roles: Iterable[str], target: Target | None = None) -> str:
    """Return the role under which `user` may act on `target`; 403 FORBIDDEN when the user
    holds none of `roles`, 403 OUT_OF_SCOPE when they do but not over this object."""
    roles = tuple(roles)
    matching = [grant for grant in user.grants if grant.role in roles or grant.role == "admin"]
    if not matching:
        raise Forbidden()
    for grant in matching:
        if grant_covers(grant, target):
            return grant.role
    raise OutOfScope()


def scopes_of(user, role: str) -> list:
    """The grants of `role` (admin grants count for every role) for filtering list queries."""
    return [grant for grant in user.grants if grant.role in (role, "admin")]


def _check_roles(roles: tuple[str, ...]) -> None:
    user = current_user()
    if roles and not has_role(user, *roles):
        raise Forbidden()


def requires(*roles: str) -> Callable:
    """Route decorator: a logged-in user holding one of `roles` (any scope; the service checks
    the scope against the object). With no roles: any logged-in user.

    The mark it leaves (`_required_roles`, copied outward by functools.wraps) is also enforced
    before the view runs at all (`enforce_route_auth`), so 401/403 come before body validation
    whatever the decorator order."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            _check_roles(roles)
            return view(*args, **kwargs)

        wrapper._required_roles = roles
        return wrapper

    return decorator


def enforce_route_auth() -> None:
    """before_request: authenticate and role-check routes marked by @requires."""
    view = current_app.view_functions.get(request.endpoint or "")
    roles = getattr(view, "_required_roles", None)
    if roles is not None:
        _check_roles(roles)
