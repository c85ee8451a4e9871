"""What keeps the console's cookies and forms honest: the browser-binding cookie, CSRF tokens,
cookie attributes, and the `next=` a login returns to.

CSRF tokens are derived, not stored: HMAC(SECRET_KEY, what the request is bound to), the
console session's id once logged in, the browser-binding cookie before (the login pages' own
forms). A page carries its token in a hidden field (`csrf_token`) and in
`<meta name="csrf-token">` for fetch (`X-CSRF-Token` header); the check compares in constant time."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from flask import current_app, g, request

BROWSER_COOKIE = "xgz_console_browser"
BROWSER_COOKIE_DAYS = 30
COOKIE_PATH = "/console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HOME = "/console/"
# Where `next=` may not lead: the login pages themselves (a loop) and static files.
_NOT_NEXT = ("/console/login", "/console/static/", "/console/scan/")


def cookie_options(max_age: int | None) -> dict:
    """HttpOnly, SameSite=Lax, Secure when the request came over https (behind nginx the
    scheme is the proxy's X-Forwarded-Proto, trusted when PROXY_COUNT is set), path /console."""
    return {"max_age": max_age, "httponly": True, "samesite": "Lax", "secure": request.is_secure,
            "path": COOKIE_PATH}


# -- the browser-binding cookie ---------------------------------------------------------------
def browser_id() -> str:
    """This browser's binding id: the cookie's value, or a new one (set on the response by
    `remember_browser`). A login ticket stores only its hash."""
    if "console_browser_id" not in g:
        value = request.cookies.get(BROWSER_COOKIE, "")
        g.console_browser_new = not _well_formed(value)
        g.console_browser_id = secrets.token_urlsafe(32) if g.console_browser_new else value
    return g.console_browser_id


def existing_browser_id() -> str | None:
    """The browser id the request came with (None: it has none, so it owns no ticket)."""
    value = request.cookies.get(BROWSER_COOKIE, "")
    return value if _well_formed(value) else None


def browser_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def remember_browser(response):
    """after_request: hand a newly made browser id to the browser."""
    if g.get("console_browser_new"):
        response.set_cookie(BROWSER_COOKIE, g.console_browser_id, **cookie_options(BROWSER_COOKIE_DAYS * 86400))
    return response


def _well_formed(value: str) -> bool:
    return 32 <= len(value) <= 64 and all(c.isalnum() or c in "-_" for c in value)


# -- CSRF -----------------------------------------------------------------------------------------
def csrf_token() -> str:
    """The token this page's forms and fetches must send back."""
    session = g.get("console_session")
    subject = f"session:{session.id}" if session is not None else f"browser:{browser_id()}"
    return _mac(subject)


def csrf_ok() -> bool:
    """Whether this state-changing request carries the token of what it is bound to."""
    given = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD) or ""
    session = g.get("console_session")
    if session is not None:
        expected = _mac(f"session:{session.id}")
    else:
        known = existing_browser_id()
        if known is None:
            return False
        expected = _mac(f"browser:{known}")
    return hmac.compare_digest(given.encode(), expected.encode())


def _mac(subject: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"xgz-console-csrf-v1:{subject}".encode(), hashlib.sha256).hexdigest()


# -- next= ----------------------------------------------------------------------------------------
def safe_next(value: str | None) -> str:
    """`value` when it is a page of this console (a local /console/ path, query allowed);
    otherwise the home page. Anything that could leave the site (a scheme, a host, //, a
    backslash, encoded dots or slashes, control characters) is refused, not repaired."""
    if not value or len(value) > 2000 or any(ord(c) < 0x20 or c == "\\" for c in value):
        return HOME
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.fragment:
        return HOME
    path = parts.path
    if any(encoded in path.lower() for encoded in ("%2f", "%5c", "%2e")):
        return HOME  # an encoded slash or dot: what it decodes to is not what was checked
    if not path.startswith("/console/") or "//" in path or "/." in path or path.startswith(_NOT_NEXT):
        return HOME
    return value


def login_url(next_path: str | None = None, reason: str | None = None) -> str:
    from urllib.parse import urlencode

    query = {}
    if next_path and safe_next(next_path) != HOME:
        query["next"] = next_path
    if reason:
        query["reason"] = reason
    return "/console/login" + (f"?{urlencode(query)}" if query else "")


def wants_json() -> bool:
    """A fetch from the console's scripts (it asks for JSON or sends the CSRF header), not a
    page navigation: errors answer in the envelope instead of an HTML page."""
    if request.headers.get(CSRF_HEADER) or request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"
