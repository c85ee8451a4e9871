"""R4 without pool_pre_ping: a pooled psycopg connection that PostgreSQL dropped while it sat in
the pool is replaced at checkout (app/core/db._verify_postgres_connection), so the first
request after the server is back succeeds — not only the ones after a failure.

Restarts the machine's PostgreSQL: runs only with XGZ_OUTAGE_TESTS=1 against PostgreSQL."""
import os
import shutil
import subprocess
import time

import pytest
from sqlalchemy import text

pytestmark = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgresql+psycopg:")
    or os.environ.get("XGZ_OUTAGE_TESTS") != "1"
    or not shutil.which("pg_ctlcluster") or not os.path.isdir("/etc/postgresql"),
    reason="needs psycopg 3, PostgreSQL managed by pg_ctlcluster and XGZ_OUTAGE_TESTS=1")


def _restart_postgres() -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
                   check=True, timeout=120, capture_output=True)


def test_connection_dropped_in_the_pool_is_replaced_before_use(app):
    from app.extensions import db

    engine = db.engine
    assert engine.pool._pre_ping is False  # the check below is what proves liveness
    with engine.connect() as connection:  # one pooled connection, back in the pool afterwards
        first_pid = connection.execute(text("SELECT pg_backend_pid()")).scalar()
    _restart_postgres()
    time.sleep(0.2)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT pg_backend_pid()")).scalar() != first_pid


def test_a_live_pooled_connection_is_checked_without_a_round_trip(app, monkeypatch):
    from app.core import db as core_db
    from app.extensions import db

    pings = []
    real_ping = core_db._psycopg_ping
    monkeypatch.setattr(core_db, "_psycopg_ping", lambda conn: pings.append(conn) or real_ping(conn))
    db.engine.dispose()  # start from live connections (an earlier test may restart the server)
    for _ in range(5):
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    assert pings == []
    # Idle past the threshold: proven with a real ping before use.
    monkeypatch.setattr(core_db, "PING_IDLE_SECONDS", -1.0)
    with db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    assert len(pings) == 1
