"""What the deployment's HTTP server (gunicorn, deploy/gunicorn.conf.py) writes on its own.

- The access log records the route template the app matched (`/api/v1/stalls/<token>`), never
  the raw path or query string, so coordinates, stall tokens, photo keys and codes stay out of
  it (R8 covers every log line the deployment writes). The app puts the template in the WSGI
  environ under ROUTE_KEY; the badge fast path does the same.
- gunicorn's own error log lines go through the app's redaction, with query strings cut.
- Requests gunicorn refuses before the app sees them (request line over the limit, malformed
  headers) are answered in the API's JSON envelope, not gunicorn's HTML page."""
from __future__ import annotations

import json
import os
import re

from gunicorn import util as gunicorn_util
from gunicorn.glogging import Logger

from app.core.frame import ROUTE_KEY
from app.core.logging import JSONFormatter, redact

UNROUTED = "(未匹配路由)"
_QUERY = re.compile(r"\?[^\s'\"]*")
_SECRET_HEADERS = ("authorization", "cookie", "x-wx-openid", "x-client-request-id")

# Status gunicorn answers with -> our envelope's code and message (see app.core.errors).
SERVER_REFUSALS = {
    400: ("BAD_REQUEST", "请求格式有误，请检查后重试"),
    403: ("FORBIDDEN", "您没有权限进行此操作"),
    414: ("URI_TOO_LONG", "请求地址过长，请缩短查询参数后重试"),
    417: ("BAD_REQUEST", "请求格式有误，请检查后重试"),
    431: ("HEADERS_TOO_LARGE", "请求头过大，请检查后重试"),
    500: ("INTERNAL_ERROR", "服务器开小差了，请稍后重试；如持续出现请联系管理员并提供请求编号"),
    501: ("BAD_REQUEST", "不支持的传输编码"),
}


class RouteAccessLogger(Logger):
    def setup(self, cfg):
        super().setup(cfg)
        if os.environ.get("LOG_FORMAT", "text").strip().lower() == "json":
            # One format for every line the deployment writes (the access line is the app's then).
            for handler in self.error_log.handlers:
                handler.setFormatter(JSONFormatter())

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        route = environ.get(ROUTE_KEY) or UNROUTED
        method = environ.get("REQUEST_METHOD", "-")
        atoms.update({
            "r": f"{method} {route} {environ.get('SERVER_PROTOCOL', '-')}",
            "U": route, "q": "-", "f": _QUERY.sub("?…", atoms.get("f", "-") or "-"),
        })
        for name in _SECRET_HEADERS:
            if "{%s}i" % name in atoms:
                atoms["{%s}i" % name] = "***"
        return atoms

    def _clean(self, msg, args):
        text = (msg % args) if args else str(msg)
        return _QUERY.sub("?…", redact(text))

    def error(self, msg, *args, **kwargs):
        super().error(self._clean(msg, args), **kwargs)

    def warning(self, msg, *args, **kwargs):
        super().warning(self._clean(msg, args), **kwargs)

    def info(self, msg, *args, **kwargs):
        super().info(self._clean(msg, args), **kwargs)

    def exception(self, msg, *args, **kwargs):
        super().exception(self._clean(msg, args), **kwargs)


def write_envelope_error(sock, status_int, reason, mesg):
    """Replaces gunicorn.util.write_error: the same status line, our JSON body."""
    code, message = SERVER_REFUSALS.get(status_int, SERVER_REFUSALS[400 if status_int < 500 else 500])
    body = json.dumps({"error": {"code": code, "message": message, "details": {}}},
                      ensure_ascii=False).encode("utf-8")
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "X-Content-Type-Options: nosniff\r\n\r\n").encode("latin-1")
    gunicorn_util.write_nonblock(sock, head + body)


def install_envelope_errors() -> None:
    """Called from deploy/gunicorn.conf.py, in the master before workers fork."""
    gunicorn_util.write_error = write_envelope_error
