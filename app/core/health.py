"""Liveness and readiness for load balancers and operators.

/readyz is 503 only when the database is down: nothing can be served without it. Everything
else degrades: Redis (an accelerator with in-process fallbacks) and what features register
with `readiness_check` (the reminder scheduler's heartbeat, the outbox's lag), since the API
serves without them. A feature's check returns its state ("ok" or a word for what is wrong)
and a few numbers shown under its name; it runs only when the database answers, and must stay
cheap (a load balancer calls this every few seconds): one small indexed query."""
from typing import Callable

from flask import Blueprint, jsonify
from sqlalchemy import text

from app.extensions import db, kv

bp = Blueprint("health", __name__)

# name -> check() returning (state, details); "ok" is healthy, any other state degrades.
_checks: dict[str, Callable[[], tuple[str, dict]]] = {}


def readiness_check(name: str, check: Callable[[], tuple[str, dict]]) -> None:
    """Register (or replace: create_app may run more than once) a feature's readiness check."""
    _checks[name] = check


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    checks, details = {}, {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:
        db.session.rollback()
        checks["database"] = "down"
    if kv.shared:
        checks["redis"] = "ok" if kv.ping() else "down"
    if checks["database"] == "ok":
        for name, check in _checks.items():
            try:
                checks[name], details[name] = check()
            except Exception:  # its table missing before a migration, a query that failed
                db.session.rollback()
                checks[name] = "error"
    ready = checks["database"] == "ok"
    degraded = any(state != "ok" for state in checks.values())
    status = "not_ready" if not ready else ("degraded" if degraded else "ready")
    response = jsonify(status=status, checks=checks, **details)
    response.status_code = 200 if ready else 503
    return response
