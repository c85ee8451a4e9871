"""The HTTP frame around every request: request id, one transaction, the error envelope."""
from __future__ import annotations

import logging

from flask import Flask, Request, current_app, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from marshmallow import ValidationError
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from werkzeug.routing import IntegerConverter
from werkzeug.exceptions import HTTPException

from app.core import audit, frame, safejson, transactions
from app.core.errors import CODES, NOT_VISIBLE, PATH_OBJECTS, APIError
from app.extensions import db

log = logging.getLogger("app.request")

# HTTP statuses werkzeug may raise on its own -> our codes.
HTTP_CODES = {
    400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED", 409: "CONFLICT", 413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE", 422: "VALIDATION_ERROR", 429: "RATE_LIMITED",
    503: "SERVICE_UNAVAILABLE",
}


def envelope(code: str, status: int | None = None, message: str | None = None, details=None):
    default_status, default_message = CODES.get(code, (status or 500, CODES["INTERNAL_ERROR"][1]))
    body = {"error": {"code": code, "message": message or default_message, "details": details or {}}}
    response = jsonify(body)
    response.status_code = status or default_status
    return response


def _start_request() -> None:
    # g outlives a request when the caller already holds an app context (tests, CLI): start clean.
    g.pop("current_user", None)
    g.pop(audit.REGION_KEY, None)
    # The server's id, given by the outermost frame (app.core.frame); a client's own id is a
    # separate, labelled value and never lands in audit rows.
    g.request_id = request.environ.get(frame.REQUEST_ID_KEY) or frame.new_request_id()
    g.client_request_id = request.environ.get(frame.CLIENT_REQUEST_ID_KEY)
    # For the server's access log: the route template, never the raw path (app.core.serving).
    request.environ[frame.ROUTE_KEY] = request.url_rule.rule if request.url_rule is not None else None
    view = current_app.view_functions.get(request.endpoint)
    transactions.begin_request(db.session(), transactions.wants_read_only(request.method, view))
    _refuse_unreadable_path()


def _refuse_unreadable_path() -> None:
    """A path segment with a control character or a lone surrogate names nothing: 404 before
    it reaches a query (PostgreSQL refuses NUL in text)."""
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str) and safejson.has_bad_text(value):
            raise APIError(code=PATH_OBJECTS.get(name, "NOT_FOUND"))


def _session_untouched() -> bool:
    """True when this request never began a transaction nor left anything to flush (reads
    served without the ORM, health checks): the commit would only cost its machinery."""
    if not db.session.registry.has():
        return True
    session = db.session()
    return not session.in_transaction() and not (session.new or session.dirty or session.deleted)


def _end_request(exc) -> None:
    request.environ[frame.USER_KEY] = _user_id(g.get("current_user"))
    if db.session.registry.has():
        transactions.end_request(db.session())


def _user_id(user) -> int | None:
    """The user's numeric id for the access line, read from the row's identity so that a row
    expired by the commit is not loaded again (and nothing but the id is ever read)."""
    if user is None:
        return None
    try:
        identity = sa_inspect(user).identity
    except Exception:
        identity = None
    value = identity[0] if identity else user.__dict__.get("id")
    return value if isinstance(value, int) else None


def _commit_or_fail(response):
    """Commit the request's one transaction when the answer is a success; anything else rolls
    back, so an error never leaves half-written rows."""
    if response.status_code >= 400:
        db.session.rollback()
        return response
    if _session_untouched() or transactions.is_read_only(db.session()):
        return response  # nothing to commit: an autocommit read-only request wrote nothing
    try:
        db.session.commit()
    except APIError as error:  # a refusal raised while flushing (the content gate)
        return handle_api_error(error)
    except IntegrityError:
        db.session.rollback()
        log.info("commit conflict", extra={"request_id": g.get("request_id")})
        return envelope("CONFLICT")
    except OperationalError as error:
        # The server went away between the work and the commit (a restart): 503, like the
        # same failure one statement earlier (handle_database_unavailable); nothing was written.
        return handle_database_unavailable(error)
    except Exception:
        db.session.rollback()
        log.exception("commit failed")
        return envelope("INTERNAL_ERROR", details={"request_id": g.get("request_id")})
    return response


def _validation_details(messages) -> dict:
    return {"fields": messages} if isinstance(messages, dict) else {"fields": {"_schema": messages}}


def hide_existence(error: APIError) -> APIError:
    """A "you may not see this" refusal on a route that names an object is answered as that
    object's 404: an outsider cannot tell a real id from a missing one."""
    if error.code not in NOT_VISIBLE or not request.view_args or getattr(error, "route_level", False):
        return error
    for name in request.view_args:  # in the URL's order: the outermost object first
        code = PATH_OBJECTS.get(name)
        if code is not None:
            return APIError(code=code)
    return error


def handle_api_error(error: APIError):
    db.session.rollback()
    error = hide_existence(error)
    response = envelope(error.code, error.status, error.message, error.details)
    retry_after = (error.details or {}).get("retry_after_seconds")
    if retry_after is not None:  # every rate-limited (or busy) answer says when to come back
        response.headers["Retry-After"] = str(int(retry_after))
    return response


def handle_http_exception(error: HTTPException):
    db.session.rollback()
    status = error.code or 500
    details = {}
    # flask-smorest/webargs put marshmallow messages on the exception's data.
    messages = getattr(error, "data", {}).get("messages") if hasattr(error, "data") else None
    if messages:
        # webargs nests by location: {"json": {...}} — keep the field map for the client
        # (one location per operation: a body, a form or a query string).
        located = messages
        if isinstance(messages, dict):  # a body's field map, whatever its encoding
            for body in ("json", "form_and_files", "form", "files", "query"):
                if body in messages:
                    located = messages[body]
                    break
        if status == 400 and "Invalid JSON body." in str(located):
            return envelope("INVALID_JSON", 400)
        details = _validation_details(located)
        if status == 422:
            return envelope("VALIDATION_ERROR", 422, details=details)
    if status == 400 and "JSON" in (error.description or ""):
        return envelope("INVALID_JSON", 400)
    code = HTTP_CODES.get(status, "INTERNAL_ERROR" if status >= 500 else "BAD_REQUEST")
    return _with_protocol_headers(envelope(code, status, details=details), error)


# Headers an HTTP error carries for the client's next step (405's Allow, 429/503's Retry-After,
# 401's WWW-Authenticate); the envelope replaces only the body.
_PROTOCOL_HEADERS = ("allow", "retry-after", "www-authenticate", "content-range")


def _with_protocol_headers(response, error: HTTPException):
    for name, value in error.get_headers():
        if name.lower() in _PROTOCOL_HEADERS:
            response.headers[name] = value
    return response


def handle_validation_error(error: ValidationError):
    db.session.rollback()
    return envelope("VALIDATION_ERROR", 422, details=_validation_details(error.messages))


def handle_database_unavailable(error: OperationalError):
    db.session.rollback()
    log.error("database unavailable: %s", type(error.orig).__name__ if error.orig else error)
    return envelope("SERVICE_UNAVAILABLE", 503, details={"request_id": g.get("request_id")})


def handle_out_of_range(error: Exception):
    """A number the database column cannot hold (e.g. an id of 2**70) is the client's error."""
    db.session.rollback()
    return envelope("VALIDATION_ERROR", 422, message="数值超出允许范围，请检查后重试")


class BoundedIntConverter(IntegerConverter):
    """<int:…> in URLs matches only values an INTEGER primary key can hold; larger ones are 404.
    ASCII digits only: werkzeug's \\d also matches other scripts' digits, and /reports/１ was
    report 1 under a second URL."""

    regex = r"[0-9]+"

    def __init__(self, map, fixed_digits=0, min=None, max=2**31 - 1, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def handle_unexpected(error: Exception):
    db.session.rollback()
    log.exception("unhandled error")
    return envelope("INTERNAL_ERROR", 500, details={"request_id": g.get("request_id")})


class APIRequest(Request):
    """`request.get_json()` refuses what app.core.safejson refuses, with the envelope."""

    def on_json_loading_failed(self, e):
        if isinstance(e, safejson.RequestJSONError):
            raise e.as_api_error()
        raise APIError(code="INVALID_JSON")


class SafeJSONProvider(DefaultJSONProvider):
    """Reads with the bounded, text-checking parser; writes as Flask does."""

    def loads(self, s, **kwargs):
        return safejson.loads(s)


def install_request_parsing(app: Flask) -> None:
    app.request_class = APIRequest
    app.json = SafeJSONProvider(app)


def install_url_converters(app: Flask) -> None:
    """Before any route is added: routes bind their converters when registered."""
    app.url_map.converters["int"] = BoundedIntConverter


def init_http(app: Flask, authenticate) -> None:
    """After the extensions: flask-smorest registers an HTTPException handler we replace.
    `authenticate` is identity's route check, run once the request has its id."""
    app.before_request(_start_request)
    app.before_request(authenticate)
    app.after_request(_commit_or_fail)  # X-Request-ID and common headers: app.core.frame
    app.teardown_request(_end_request)
    app.register_error_handler(APIError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(ValidationError, handle_validation_error)
    app.register_error_handler(OperationalError, handle_database_unavailable)
    app.register_error_handler(DataError, handle_out_of_range)
    app.register_error_handler(OverflowError, handle_out_of_range)
    app.register_error_handler(Exception, handle_unexpected)
