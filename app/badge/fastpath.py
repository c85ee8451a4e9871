"""WSGI fast path for public badge reads (QUALITY.md P1/P2/P3), installed by create_app.

A badge read needs no more than this worker's confirmed entry, or one indexed query of the
stored projection (app/badge/cache.py); Flask's request machinery (request context, hooks, the
session commit) costs several times that. So this middleware answers exactly those reads —
GET/HEAD of /api/v1/public/stalls/<token> and /s/<token> without a query string — with the same
bytes and headers the Flask views send (both come from badge_cache.answer); everything else,
unknown or void tokens and any error included, goes to Flask unchanged. Headers every response
carries (the request id) are added by the frame around both (app/core/frame.py)."""
from __future__ import annotations

import re

from app.badge import cache as badge_cache
from app.core.frame import ROUTE_KEY
from app.core.time import utcnow

_PATHS = (
    (re.compile(r"^/api/v1/public/stalls/([0-9A-Za-z]{1,32})$"), "json"),
    (re.compile(r"^/s/([0-9A-Za-z]{1,32})$"), "html"),
)
_ROUTES = {"json": "/api/v1/public/stalls/<token>", "html": "/s/<token>"}  # for the access log


class BadgeFastPath:
    def __init__(self, app, wsgi_app) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self._engine = None

    def _match(self, environ) -> tuple[str, str] | None:
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD") or environ.get("QUERY_STRING"):
            return None
        path = environ.get("PATH_INFO", "")
        for pattern, kind in _PATHS:
            found = pattern.match(path)
            if found:
                return kind, found.group(1)
        return None

    def _enabled(self) -> bool:
        return str(self.app.config.get("BADGE_CACHE", "on")).lower() not in ("off", "0", "false", "no")

    def _db_engine(self):
        if self._engine is None:
            from app.extensions import db

            with self.app.app_context():
                self._engine = db.engine
        return self._engine

    def __call__(self, environ, start_response):
        matched = self._match(environ)
        if matched is None:
            return self.wsgi_app(environ, start_response)
        kind, token = matched
        now = utcnow()
        try:
            # A confirmed entry of this worker, or a stored row still true, needs no app context;
            # only a missing or expired row is computed (and stored) in one.
            # Counted as hits here when answered here; `cached` counts what it serves itself.
            enabled = self._enabled()
            entry = badge_cache.local_cache.fresh((kind, token), now) if enabled else None
            if entry is not None:
                badge_cache.count_hit("memory")
            else:
                entry = badge_cache.stored_hit(kind, token, now, self._db_engine())
                if entry is not None:
                    badge_cache.count_hit("stored")
                    if enabled:
                        badge_cache.local_cache.put((kind, token), entry)
            if entry is None:
                with self.app.app_context():
                    entry, now = badge_cache.cached(kind, token)
        except Exception:
            # Unknown or void token, database trouble: the views answer it, in the envelope.
            return self.wsgi_app(environ, start_response)
        environ[ROUTE_KEY] = _ROUTES[kind]
        status, headers, body = badge_cache.answer(kind, entry, now, environ.get("HTTP_IF_NONE_MATCH"))
        if status == 200:
            headers.append(("Content-Length", str(len(body))))  # request id: app.core.frame
        start_response("200 OK" if status == 200 else "304 Not Modified", headers)
        return [b""] if environ["REQUEST_METHOD"] == "HEAD" else [body]


def install(app) -> None:
    if not isinstance(app.wsgi_app, BadgeFastPath):
        app.wsgi_app = BadgeFastPath(app, app.wsgi_app)
