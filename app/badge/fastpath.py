"""WSGI fast path for warm public badge reads (QUALITY.md P1/P3).

A warm read needs two things: the stall's current badge version (one indexed SELECT on a
dedicated per-thread connection) and the pre-serialised bytes cached for (token, version) in this
worker. Both are available without Flask's request machinery, which costs several times the read
itself (request context, hooks, the session commit, the cookie session). So this middleware
answers exactly those reads — GET/HEAD of /api/v1/public/stalls/<token> and /s/<token> — with the
same bytes and headers the Flask views send: from the local cache when the entry is current and
not past its changes_at, else computed in an app context (and cached). Anything else (unknown or
void tokens, any error, other paths, query strings) goes to Flask unchanged. Correctness is the
cache's: the version is read from the database on every request."""
from __future__ import annotations

import re

from app.core.frame import ROUTE_KEY
from app.core.time import utcnow
from app.badge import cache as badge_cache

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
        import os

        setting = self.app.config.get("BADGE_CACHE") or os.environ.get("BADGE_CACHE", "on")
        return str(setting).lower() not in ("off", "0", "false", "no")

    def _version(self, token: str) -> int | None:
        if self._engine is None:
            from app.extensions import db

            with self.app.app_context():
                self._engine = db.engine
        return badge_cache.probe_version(self._engine, token)

    def __call__(self, environ, start_response):
        matched = self._match(environ)
        if matched is None:
            return self.wsgi_app(environ, start_response)
        kind, token = matched
        entry, now = None, utcnow()
        try:
            if self._enabled():
                entry = badge_cache.local_cache.fresh((kind, token), now)
                if entry is None:
                    version = self._version(token)
                    if version is None:
                        return self.wsgi_app(environ, start_response)  # 404 or 410, from the views
                    entry = badge_cache.local_cache.get((kind, token), version, now)
            if entry is None:
                entry, now = self._compute(kind, token)
        except Exception:
            # Unknown or void token, database trouble: the views answer it, in the envelope.
            return self.wsgi_app(environ, start_response)
        environ[ROUTE_KEY] = _ROUTES[kind]
        status, headers, body = badge_cache.answer(kind, entry, now, environ.get("HTTP_IF_NONE_MATCH"))
        if status == 200:
            headers.append(("Content-Length", str(len(body))))  # request id: app.core.frame
        start_response("200 OK" if status == 200 else "304 Not Modified", headers)
        return [b""] if environ["REQUEST_METHOD"] == "HEAD" else [body]

    def _compute(self, kind: str, token: str):
        """A miss: compute (and cache) in an app context, without the request machinery."""
        from app.badge.page import render_page

        render = render_page if kind == "html" else badge_cache.render_json
        with self.app.app_context():
            return badge_cache.cached(kind, token, render)


def install(app) -> None:
    if not isinstance(app.wsgi_app, BadgeFastPath):
        app.wsgi_app = BadgeFastPath(app, app.wsgi_app)
