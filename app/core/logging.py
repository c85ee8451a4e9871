"""Log setup: every line carries the request id, and a last-line filter masks anything that
looks like a secret or personal data (session_key, bearer tokens, phone numbers) should a
message ever contain one."""
from __future__ import annotations

import logging
import re

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


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if any(getattr(h, "_xgz", False) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler._xgz = True  # type: ignore[attr-defined]
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(RedactingFormatter(
        "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    # urllib3 logs full URLs (with access_token and js_code) at DEBUG; keep it quiet.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
