"""Bearer tokens, the current user, and role-with-scope checks.

A token is itsdangerous-signed {uid, ver}; it expires after AUTH_TOKEN_TTL_SECONDS and dies at
once when the user's token_version is bumped. Authorization is decided next to the route
(`@requires(...)` for the role) and against the object (`authorize(...)` for the scope)."""
from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from flask import current_app, g, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import bindparam, event, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, joinedload, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from app.core.caches import process_cache
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
    cached = principal_cache.get(token)
    if cached is not None:
        return cached.attach()
    ttl = current_app.config["AUTH_TOKEN_TTL_SECONDS"]
    try:
        data, signed_at = _serializer().loads(token, max_age=ttl, return_timestamp=True)
    except SignatureExpired:
        raise APIError(code="TOKEN_EXPIRED")
    except BadSignature:
        raise APIError(code="TOKEN_INVALID")
    if not isinstance(data, dict) or not isinstance(data.get("uid"), int):
        raise APIError(code="TOKEN_INVALID")
    user = db.session.scalars(_user_with_grants(), {"uid": data["uid"]}).unique().first()
    if user is None or user.token_version != data.get("ver"):
        raise APIError(code="TOKEN_INVALID")
    principal_cache.put(token, user, token_expires_at=signed_at.timestamp() + ttl,
                        seconds=current_app.config["AUTH_CACHE_SECONDS"])
    return user


class _CachedPrincipal:
    """A verified token's user and grants, detached. Each request gets its own detached copy
    (no session work: merging into the session cost most of a retried check-in's auth); a
    service that changes the user itself takes the row from the session first
    (identity.services.persistent)."""

    __slots__ = ("user", "grants", "until")

    def __init__(self, user, grants, until: float) -> None:
        self.user, self.grants, self.until = user, grants, until

    def attach(self):
        user = _detached_copy(self.user)
        set_committed_value(user, "grants", [_detached_copy(grant) for grant in self.grants])
        return user


class PrincipalCache:
    """Per-worker cache of verified tokens (QUALITY P4: authentication is most of a retried
    check-in's cost). Bounded in size and age: an entry lives AUTH_CACHE_SECONDS at most and
    never past the token's expiry. Any flush that changes a user or a grant in this process
    drops that user's entries at once; other workers see a revoked role or token, a new phone
    number, within AUTH_CACHE_SECONDS (0 turns the cache off)."""

    def __init__(self, size: int = 20000) -> None:
        self.size = size
        self._entries: dict[str, _CachedPrincipal] = {}
        self._by_user: dict[int, set[str]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> _CachedPrincipal | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if entry.until <= time.time():
            self._drop(token)
            return None
        return entry

    def put(self, token: str, user, token_expires_at: float, seconds: float) -> None:
        if seconds <= 0:
            return
        detached_user = _detached_copy(user)
        grants = [_detached_copy(grant) for grant in user.grants]
        entry = _CachedPrincipal(detached_user, grants, min(time.time() + seconds, token_expires_at))
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries.clear()
                self._by_user.clear()
            self._entries[token] = entry
            self._by_user.setdefault(user.id, set()).add(token)

    def forget_user(self, user_id: int) -> None:
        with self._lock:
            for token in self._by_user.pop(user_id, ()):
                self._entries.pop(token, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._by_user.clear()

    def _drop(self, token: str) -> None:
        with self._lock:
            self._entries.pop(token, None)


def _detached_copy(instance):
    """A detached copy of a loaded row: its column values only, no session, no relations."""
    state = sa_inspect(instance)
    copy = state.mapper.class_manager.new_instance()
    for column in state.mapper.column_attrs:
        if column.key in state.dict:
            copy.__dict__[column.key] = state.dict[column.key]
    make_transient_to_detached(copy)
    return copy


principal_cache = process_cache("principals", PrincipalCache())


@event.listens_for(Session, "after_flush")
def _forget_changed_principals(session, flush_context) -> None:
    """A user or grant written in this process: that user's cached tokens go at once."""
    from app.identity.models import RoleGrant, User

    for instance in list(session.dirty) + list(session.new) + list(session.deleted):
        if isinstance(instance, User) and instance.id is not None:
            principal_cache.forget_user(instance.id)
        elif isinstance(instance, RoleGrant) and instance.user_id is not None:
            principal_cache.forget_user(instance.user_id)


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
    from app.core.regions import region_covers

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
        refusal = Forbidden()
        # Decided by the route alone, before any object is looked up: it says nothing about
        # whether the object exists, so it stays an honest 403 (see app.core.http.hide_existence).
        refusal.route_level = True
        raise refusal


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
