"""The outermost WSGI layer: what every response carries, whoever produced it.

Flask views, error handlers, a failed final commit, the badge fast path (which skips Flask's
hooks) and anything installed later all sit inside this frame, so a header added here cannot
miss a route. It also gives each request its server-side id before anything else runs; a
client's own X-Request-ID is kept beside it, labelled, and never becomes the audit row's id.

Being around everything, it is also where a request is measured (app.core.metrics) and, with
LOG_FORMAT=json, where its one access line is written (gunicorn's own access log is off then)."""
from __future__ import annotations

import re
import time
import uuid

from app.core import metrics
from app.core.logging import access_log

REQUEST_ID_KEY = "xgz.request_id"
CLIENT_REQUEST_ID_KEY = "xgz.client_request_id"
ROUTE_KEY = "xgz.route"  # the matched route template, for the server's access log
USER_KEY = "xgz.user_id"  # the authenticated user's numeric id, for the access line
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

# Sent with every response. Add new ones here (HSTS belongs to the TLS terminator, nginx).
COMMON_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
)


def new_request_id() -> str:
    return uuid.uuid4().hex


def client_request_id(environ) -> str | None:
    incoming = environ.get("HTTP_X_REQUEST_ID", "")
    return incoming if _CLIENT_ID.match(incoming) else None


class ResponseFrame:
    def __init__(self, wsgi_app, access_line: bool = False) -> None:
        self.wsgi_app = wsgi_app
        self.access_line = access_line

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        request_id = environ[REQUEST_ID_KEY] = new_request_id()
        client_id = environ[CLIENT_REQUEST_ID_KEY] = client_request_id(environ)
        answered = []

        def framed_start_response(status, headers, exc_info=None):
            answered[:] = [status]
            present = {name.lower() for name, _ in headers}
            headers = [(name, value) for name, value in headers
                       if name.lower() not in ("x-request-id", "x-client-request-id")]
            headers.append(("X-Request-ID", request_id))
            if client_id:
                headers.append(("X-Client-Request-ID", client_id))
            headers.extend((name, value) for name, value in COMMON_HEADERS if name.lower() not in present)
            return start_response(status, headers, exc_info)

        try:
            body = self.wsgi_app(environ, framed_start_response)
        except BaseException:
            answered[:] = ["500"]
            raise
        finally:
            # Measured when the response is ready, before it is sent: the client's network is
            # not the application's latency.
            self._finished(environ, answered, time.perf_counter() - started)
        return body

    def _finished(self, environ, answered, seconds: float) -> None:
        status = int(answered[0].split(" ", 1)[0]) if answered else 500
        route, method = environ.get(ROUTE_KEY), environ.get("REQUEST_METHOD", "-")
        method = method if method in metrics.METHODS else "other"
        metrics.observe_request(route, method, status, seconds)
        if self.access_line:
            route = route or metrics.UNMATCHED
            access_log.info("%s %s %s", method, route, status, extra={
                "request_id": environ.get(REQUEST_ID_KEY, "-"), "route": route, "method": method,
                "status": status, "latency_ms": round(seconds * 1000, 1), "user_id": environ.get(USER_KEY)})


def install(app) -> None:
    """Last in create_app: the frame must be the outermost wrapper."""
    if not isinstance(app.wsgi_app, ResponseFrame):
        app.wsgi_app = ResponseFrame(app.wsgi_app, access_line=app.config.get("LOG_FORMAT") == "json")
