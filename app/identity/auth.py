"""Bearer tokens, the current user, and role-with-scope checks.

A token is itsdangerous-signed {uid, ver, jti}; it expires after AUTH_TOKEN_TTL_SECONDS, dies at
once when the user's token_version is bumped (log out everywhere) or its jti is voided (log out). Authorization is decided next to the route
(`@requires(...)` for the role) and against the object (`authorize(...)` for the scope)."""
from __future__ import annotations

import functools
import secrets
import threading
import time
from datetime import datetime, timezone
from dataclasses import dataclass, field
from typing import Callable, Iterable

from flask import current_app, g, has_request_context, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import bindparam, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import joinedload, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from app.core import generations, user_reads
from app.core.audit import REGION_KEY as audit_region_key
from app.core.caches import process_cache
from app.core.errors import APIError, Forbidden, OutOfScope, Unauthorized
from app.extensions import db

TOKEN_SALT = "xgz-auth-v1"


def _serializer() -> URLSafeTimedSerializer:
    # SECRET_KEY alone, never SECRET_KEY_FALLBACKS: rotating the key is how every login is
    # ended after a leak, so a token signed with an old key must fail (users log in again).
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=TOKEN_SALT)


def issue_token(user) -> tuple[str, int]:
    """A signed {uid, ver, jti}: `ver` lets "log out everywhere" void every token at once,
    `jti` lets one token be voided (POST /auth/logout)."""
    ttl = current_app.config["AUTH_TOKEN_TTL_SECONDS"]
    return _serializer().dumps({"uid": user.id, "ver": user.token_version, "jti": secrets.token_urlsafe(9)}), ttl


@functools.cache
def _user_with_grants():
    """One round trip for the user and their grants: this runs on every authenticated request
    that is not answered from the principal cache. Built once: constructing the statement and
    its cache key cost as much as running it."""
    from app.identity.models import User

    return select(User).options(joinedload(User.grants)).where(User.id == bindparam("uid"))


def principal_key(user_id: int) -> str:
    """The change counter (app.core.generations) of a user's identity: the user row, their
    grants, their voided tokens."""
    from app.identity.models import PRINCIPAL

    return generations.key(PRINCIPAL, user_id)


def user_from_token(token: str):
    ttl = current_app.config["AUTH_TOKEN_TTL_SECONDS"]
    try:
        data, signed_at = _serializer().loads(token, max_age=ttl, return_timestamp=True)
    except SignatureExpired:
        raise APIError(code="TOKEN_EXPIRED")
    except BadSignature:
        raise APIError(code="TOKEN_INVALID")
    if not isinstance(data, dict) or not isinstance(data.get("uid"), int):
        raise APIError(code="TOKEN_INVALID")
    # The counter is read before anything about the user: what is cached under it is never
    # newer than it, so a revocation committed by any worker shows on the next request.
    counter = generations.current([principal_key(data["uid"]), *user_reads.keys_for_this_request(data["uid"])])[0]
    cached = principal_cache.get(token, counter)
    if cached is not None:
        return cached.attach()
    user = db.session.scalars(_user_with_grants(), {"uid": data["uid"]}).unique().first()
    if user is None or user.token_version != data.get("ver"):
        raise APIError(code="TOKEN_INVALID")
    if data.get("jti") and token_voided(data["jti"]):
        raise APIError(code="TOKEN_REVOKED")
    if counter is not None:  # counters unreadable (Redis down): nothing may be kept
        principal_cache.put(token, user, counter, token_expires_at=signed_at.timestamp() + ttl,
                            seconds=current_app.config["AUTH_CACHE_SECONDS"])
    return user


def token_claims(token: str) -> dict:
    """What a token this app signed says (its jti may be absent: tokens issued before they had
    one), and when it expires."""
    data, signed_at = _serializer().loads(token, return_timestamp=True)
    expires = datetime.fromtimestamp(signed_at.timestamp() + current_app.config["AUTH_TOKEN_TTL_SECONDS"],
                                     tz=timezone.utc).replace(tzinfo=None)
    return {**data, "expires_at": expires}


def bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def token_voided(jti: str) -> bool:
    from app.identity.models import VoidedToken

    return db.session.get(VoidedToken, jti) is not None


class _CachedPrincipal:
    """A verified token's user and grants, detached. Each request gets its own detached copy
    (no session work: merging into the session cost most of a retried check-in's auth); a
    service that changes the user itself takes the row from the session first
    (identity.services.persistent)."""

    __slots__ = ("user", "grants", "counter", "until")

    def __init__(self, user, grants, counter: int, until: float) -> None:
        self.user, self.grants, self.counter, self.until = user, grants, counter, until

    def attach(self):
        user = _detached_copy(self.user)
        set_committed_value(user, "grants", [_detached_copy(grant) for grant in self.grants])
        return user


class PrincipalCache:
    """Per-worker cache of verified tokens (QUALITY P4: authentication is most of a retried
    check-in's cost). An entry is kept under the user's change counter (principal_key) and is
    used only while that counter is unchanged: a role granted or revoked, a token voided, a
    logout, a changed profile, committed by any worker, shows on the next request everywhere
    (R16). Bounded in size, and in age by AUTH_CACHE_SECONDS (which only matters for a bump
    lost while Redis was unreachable) and the token's expiry; 0 turns the cache off."""

    def __init__(self, size: int = 20000) -> None:
        self.size = size
        self._entries: dict[str, _CachedPrincipal] = {}
        self._lock = threading.Lock()

    def get(self, token: str, counter: int | None) -> _CachedPrincipal | None:
        entry = self._entries.get(token)
        if entry is None or counter is None:
            return None
        if entry.counter != counter or entry.until <= time.time():
            self._drop(token)
            return None
        return entry

    def holds(self, token: str) -> bool:
        """Whether a verified token is kept (valid or not)."""
        return token in self._entries

    def put(self, token: str, user, counter: int, token_expires_at: float, seconds: float) -> None:
        if seconds <= 0:
            return
        detached_user = _detached_copy(user)
        grants = [_detached_copy(grant) for grant in user.grants]
        entry = _CachedPrincipal(detached_user, grants, counter, min(time.time() + seconds, token_expires_at))
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries.clear()
            self._entries[token] = entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

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


def current_user(optional: bool = False):
    """The authenticated user of this request (cached on g); 401 unless optional."""
    if "current_user" not in g:
        token = bearer_token()
        g.current_user = user_from_token(token) if token else None
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


# How to find where a scope sits, by scope type: features that own a scope's objects register
# theirs (markets: "market", orgs: "org"), since identity imports no feature.
_scope_targets: dict[str, Callable[[str], Target | None]] = {"region": lambda code: Target(region_code=code)}


def register_scope_target(scope_type: str, locate: Callable[[str], Target | None]) -> None:
    _scope_targets[scope_type] = locate


def scope_target(scope_type: str, scope_id: str) -> Target | None:
    """Where a grant's scope sits (None for a scope whose object is gone)."""
    return _scope_targets[scope_type](scope_id)  # an unregistered type is a bug: fail loudly


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
            _remember_region(target)
            return grant.role
    raise OutOfScope()


def _remember_region(target: Target | None) -> None:
    """The audit row of this request's change names the region of the object it was allowed on
    (app.core.audit.REGION_KEY), so regulators can read their region's trail."""
    if target is not None and target.region_code and has_request_context():
        g.setdefault(audit_region_key, target.region_code)


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
