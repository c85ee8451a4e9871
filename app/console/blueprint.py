"""The console blueprint and what every console request goes through.

- Every route needs a live console session unless marked `@public` (the login pages):
  a page navigation without one is sent to /console/login?next=<this page>; a fetch gets 401
  CONSOLE_LOGIN_REQUIRED in the envelope (its `details.login_url` says where to go).
- Every POST/PUT/PATCH/DELETE must carry the page's CSRF token (security.py), or is refused
  with 403 CONSOLE_CSRF_FAILED: an HTML page for a form, the envelope for a fetch.
- Errors raised by services (APIError) become a Chinese error page, or the envelope for a fetch.
- Responses are not cached, may not be framed, and load scripts and styles from this site only.
"""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

import app.console.nav as nav
import app.console.security as security
import app.console.sessions as sessions
from app.core.errors import APIError

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
               static_folder="static")

STATIC_ENDPOINT = "console.static"
# Scripts and styles from this site only (nothing from a CDN); QR codes and charts may be
# data: images; inline style attributes are allowed because charting libraries write them.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
# Shown on the login page after a session ended (?reason=…): fixed texts, never the query's.
LOGIN_REASONS = {
    "expired": "长时间未操作，登录已超时。请重新扫码登录，登录后将回到刚才的页面。",
    "revoked": "您的登录已失效（可能已在其他设备上退出全部登录，或登录凭证已被撤销），请重新扫码登录。",
    "no_role": None,  # the role-required message (errors.py)
    "logout": "您已退出管理后台。",
}


def public(view):
    """Mark a console view that needs no session (the login pages)."""
    view.console_public = True
    return view


def render_page(template: str, *, nav_key: str | None = None, title: str = "", status: int = 200, **context):
    """Render a console page in the layout: `nav_key` names the navigation entry to highlight
    (nav.NAV), `title` goes into <title> and the page heading."""
    return render_template(template, nav_active=nav_key, page_title=title, **context), status


# -- every request -------------------------------------------------------------------------------
# What a console request keeps on `g`. g outlives a request when the caller already holds an
# app context (tests, CLI): each request starts without them.
_REQUEST_STATE = ("console_verdict", "console_session", "console_user", "console_browser_id", "console_browser_new")


@bp.before_request
def _guard():
    for name in _REQUEST_STATE:
        g.pop(name, None)
    if request.endpoint == STATIC_ENDPOINT:
        return None
    view = current_app.view_functions.get(request.endpoint or "")
    is_public = getattr(view, "console_public", False)
    verdict = sessions.read_session()
    g.console_verdict = verdict
    if verdict.session is not None and not is_public:
        g.console_session, g.console_user = verdict.session, verdict.user
        g.current_user = verdict.user  # the access log and audit rows name the actor
    if not is_public and verdict.session is None:
        return _login_required(verdict.reason)
    if request.method not in security.SAFE_METHODS and not security.csrf_ok():
        raise APIError(code="CONSOLE_CSRF_FAILED")
    _refuse_unreadable_text()
    return None


def _refuse_unreadable_text() -> None:
    """The API's text rule (app.core.safejson) for what a page's query string or form sends: a
    NUL or another control character, or a lone surrogate, never reaches a service (PostgreSQL
    refuses NUL outright; the others would be stored and sent on in notices)."""
    from app.core.safejson import has_bad_text

    for values in (request.args, request.form):
        if any(has_bad_text(value) for found in values.listvalues() for value in found):
            raise APIError(code="TEXT_INVALID_CHARACTERS")


def _login_required(reason: str | None):
    had_cookie = sessions.SESSION_COOKIE in request.cookies
    shown = reason if had_cookie and reason != "missing" else None
    if security.wants_json():
        raise APIError(code="CONSOLE_LOGIN_REQUIRED", details={"login_url": security.login_url(None, shown)})
    if request.method in security.SAFE_METHODS:
        back = request.full_path.rstrip("?")
    else:  # a form posted after the session ended: back to the page the form was on
        back = _referrer_path()
    response = redirect(security.login_url(back, shown), 303)
    if had_cookie:
        sessions.clear_cookie(response)
    return response


def _referrer_path() -> str | None:
    from urllib.parse import urlsplit

    referrer = urlsplit(request.referrer or "")
    if referrer.netloc != request.host:
        return None
    return referrer.path + (f"?{referrer.query}" if referrer.query else "")


@bp.after_request
def _finish(response):
    if request.endpoint == STATIC_ENDPOINT:
        return response
    security.remember_browser(response)
    verdict = g.get("console_verdict")
    if verdict is not None and g.get("console_session") is not None:
        sessions.refresh_cookie(response, verdict)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"  # next= and tickets stay on this site
    response.headers["Cache-Control"] = "no-store"  # pages hold personal data
    return response


# -- errors ---------------------------------------------------------------------------------------
@bp.errorhandler(APIError)
def _api_error(error: APIError):
    from app.core.http import handle_api_error, hide_existence

    if security.wants_json():
        return handle_api_error(error)
    from app.extensions import db

    db.session.rollback()
    error = hide_existence(error)
    return _error_page(error.status, error.message, error.code)


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException):
    from app.core.http import HTTP_CODES, handle_http_exception

    if security.wants_json():
        return handle_http_exception(error)
    from app.core.errors import CODES
    from app.extensions import db

    db.session.rollback()
    status = error.code or 500
    code = HTTP_CODES.get(status, "BAD_REQUEST")
    return _error_page(status, CODES[code][1], code)


@bp.app_errorhandler(404)
@bp.app_errorhandler(405)
def _routing_error(error: HTTPException):
    """A URL under /console/ that no console route matches (a mistyped path, an id past what
    the router reads, GET of a form's target) has no blueprint, so the app's envelope would
    answer a page navigation: it gets the console's error page. Registered on the app by
    status, this handler sees every 404/405 first and hands the others on unchanged."""
    from app.core.http import handle_http_exception

    if request.blueprint == bp.name:
        return _http_error(error)
    if request.url_rule is None and request.path.startswith(f"{bp.url_prefix}/") and not security.wants_json():
        from app.core.errors import CODES
        from app.core.http import HTTP_CODES

        code = HTTP_CODES[error.code]
        # Without a matched route the blueprint's context processor has not run: give its values.
        return render_page("console/error.html", title="出错了", status=error.code, message=CODES[code][1], code=code,
                           login_again=False, **_template_context())
    return handle_http_exception(error)


def _error_page(status: int, message: str, code: str):
    login_again = code in ("CONSOLE_LOGIN_REQUIRED", "CONSOLE_CSRF_FAILED") or code.startswith("CONSOLE_TICKET")
    signed_in = g.get("console_user") is not None
    return render_page("console/error.html", title="出错了", status=status, message=message, code=code,
                       login_again=login_again and not signed_in)


# -- what templates see ---------------------------------------------------------------------------
@bp.context_processor
def _template_context():
    user = g.get("console_user")
    return {
        "console_user": user,
        "user_label": nav.user_label(user) if user is not None else None,
        "nav_items": nav.items(user) if user is not None else [],
        "csrf_token": security.csrf_token,
        "csrf_field": security.CSRF_FIELD,
        "static_url": static_url,
    }


def static_url(filename: str) -> str:
    """A file of app/console/static, with its version (modification time and size) in the URL:
    cached for a year, fetched again when it changes."""
    return url_for(STATIC_ENDPOINT, filename=filename, v=_file_version(filename))


def _file_version(filename: str) -> str:
    stat = (Path(bp.static_folder) / filename).stat()
    return f"{stat.st_mtime_ns:x}{stat.st_size:x}"


def _static_max_age(filename: str | None) -> int:
    return 365 * 86400


bp.get_send_file_max_age = _static_max_age
