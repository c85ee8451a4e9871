"""Log setup: every line carries the request id, and a last-line filter masks anything that
looks like a secret or personal data (session_key, bearer tokens, phone numbers) should a
message ever contain one.

LOG_FORMAT=json writes one JSON object per line instead (for a log collector): time, level,
logger, message, request_id, and for the per-request access line (`access`, written by the
response frame, app.core.frame) route template, method, status, latency_ms and the numeric
user_id. Only those fields: a record's other attributes never reach the line."""
from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone

from flask import g, has_request_context

_REDACTIONS = [
    (re.compile(r"(session_key['\"]?\s*[:=]\s*['\"]?)[^'\",\s}&]+", re.I), r"\1***"),
    (re.compile(r"(Bearer\s+)[A-Za-z0-9._\-]+", re.I), r"\1***"),
    (re.compile(r"(?<![A-Za-z_])((?:access_token|secret|js_code|code)=)[^&\s'\"]+", re.I), r"\1***"),
    (re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)"), r"\1****\2"),
]


def redact(text: str) -> str:
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            try:
                record.request_id = g.get("request_id", "-") if has_request_context() else "-"
            except Exception:  # interpreter shutdown: module globals already torn down
                record.request_id = "-"
        return True


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        try:
            return redact(text)
        except Exception:  # interpreter shutdown: the patterns are gone, drop the line's details
            return f"{record.levelname} {record.name}: (message withheld at shutdown)"


TEXT_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"
# The access line's fields (app.core.frame passes them as `extra`); nothing else of a record is written.
ACCESS_FIELDS = ("route", "method", "status", "latency_ms", "user_id")
access_log = logging.getLogger("app.access")


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        try:
            line = {
                "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                "level": record.levelname,
                "logger": record.name,
                "message": redact(record.getMessage()),
                "request_id": getattr(record, "request_id", "-"),
            }
            for name in ACCESS_FIELDS:
                if hasattr(record, name):
                    line[name] = getattr(record, name)
            if record.exc_info:
                line["exception"] = redact(self.formatException(record.exc_info))
            return json.dumps(line, ensure_ascii=False, default=str)
        except Exception:  # interpreter shutdown: the patterns are gone, drop the line's details
            return json.dumps({"level": record.levelname, "logger": record.name,
                               "message": "(message withheld at shutdown)"})


def formatter(log_format: str) -> logging.Formatter:
    return JSONFormatter() if log_format == "json" else RedactingFormatter(TEXT_FORMAT)


def configure_logging(level: str, log_format: str = "text") -> None:
    root = logging.getLogger()
    # The development server's own request lines carry raw paths and duplicate the app's
    # access line in JSON mode (gunicorn's are turned off by its config).
    if log_format == "json":
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    for existing in root.handlers:
        if getattr(existing, "_xgz", False):
            existing.setFormatter(formatter(log_format))  # the latest app's LOG_FORMAT
            return
    handler = logging.StreamHandler()
    handler._xgz = True  # type: ignore[attr-defined]
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(formatter(log_format))
    root.addHandler(handler)
    root.setLevel(level)
    # urllib3 logs full URLs (with access_token and js_code) at DEBUG; keep it quiet.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
