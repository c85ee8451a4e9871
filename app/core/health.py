"""Liveness and readiness for load balancers and operators."""
from flask import Blueprint, jsonify
from sqlalchemy import text

from app.extensions import db, kv

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:
        db.session.rollback()
        checks["database"] = "down"
    if kv.shared:
        checks["redis"] = "ok" if kv.ping() else "down"
    # Redis is an accelerator with in-process fallbacks: its outage degrades, it does not unready.
    ready = checks["database"] == "ok"
    status = "not_ready" if not ready else ("degraded" if "down" in checks.values() else "ready")
    response = jsonify(status=status, checks=checks)
    response.status_code = 200 if ready else 503
    return response
