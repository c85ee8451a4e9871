"""Issue 13 item 4: the scheduler's heartbeat and the outbox's lag, in /readyz and /metrics."""
import os
import threading
import time
from datetime import datetime, timedelta

from app.reminders.leader import DEFAULT_NAME, FileLeaderLock
from tests.core.test_metrics import scrape, value

NOW = datetime(2026, 3, 2, 1, 0, 0)


def _notification(db, user_id: int, subject: str, status: str, next_attempt_at: datetime):
    from app.reminders.models import Notification

    db.session.add(Notification(user_id=user_id, kind="credential_expiry", subject=subject, period="p",
                                title="证照即将到期", body="请及时更新", status=status,
                                next_attempt_at=next_attempt_at, created_at=next_attempt_at))


def test_without_a_scheduler_readiness_degrades_but_stays_200(client):
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.get_json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"] == "ok" and body["checks"]["scheduler"] == "absent"
    assert body["scheduler"]["heartbeat_age_seconds"] is None
    assert body["checks"]["outbox"] == "ok" and body["outbox"] == {"due": 0, "oldest_due_seconds": None}


def test_the_leaders_heartbeat_shows_and_goes_stale(app, client, clock):
    from app.reminders.scheduler import _heartbeat

    clock.set(NOW)
    _heartbeat(app, DEFAULT_NAME, NOW - timedelta(hours=2))()  # what the leader runs at every renewal
    clock.advance(timedelta(seconds=12))
    body = client.get("/readyz").get_json()
    assert body["checks"]["scheduler"] == "ok" and body["status"] == "ready"
    assert body["scheduler"]["heartbeat_age_seconds"] == 12.0
    assert body["scheduler"]["holder"].endswith(":" + str(os.getpid()))
    assert body["scheduler"]["leading_since"] == "2026-03-01T23:00:00Z"
    metrics = scrape(client)
    assert value(metrics, "xgz_scheduler_leader_up") == 1
    assert value(metrics, "xgz_scheduler_heartbeat_age_seconds") == 12
    assert value(metrics, "xgz_scheduler_leading_since_seconds") == (NOW - timedelta(hours=2) - datetime(1970, 1, 1)).total_seconds()

    clock.advance(timedelta(seconds=60))
    ready = client.get("/readyz")
    assert ready.status_code == 200  # the API serves without the scheduler
    body = ready.get_json()
    assert body["checks"]["scheduler"] == "stale" and body["status"] == "degraded"
    assert body["scheduler"]["heartbeat_age_seconds"] == 72.0
    assert value(scrape(client), "xgz_scheduler_leader_up") == 0


def test_a_leading_scheduler_beats_at_every_renewal(app, db, tmp_path):
    from app.reminders.models import SchedulerHeartbeat
    from app.reminders.scheduler import run_scheduler

    lock = FileLeaderLock(str(tmp_path / "beat.lock"))
    lock.renew_every = 0.05
    stop, leading = threading.Event(), threading.Event()
    thread = threading.Thread(target=run_scheduler, kwargs=dict(
        app=app, lock=lock, stop=stop, retry_seconds=0.02, on_lead=lambda scheduler: leading.set()), daemon=True)
    thread.start()
    try:
        assert leading.wait(10)
        first = db.session.get(SchedulerHeartbeat, DEFAULT_NAME)
        assert first is not None
        seen = first.beat_at
        db.session.rollback()
        for _ in range(200):
            db.session.expire_all()
            row = db.session.get(SchedulerHeartbeat, DEFAULT_NAME)
            if row.beat_at > seen:
                break
            db.session.rollback()
            time.sleep(0.02)
        assert row.beat_at > seen and row.leading_since == first.leading_since
    finally:
        db.session.rollback()
        stop.set()
        thread.join(10)
    assert not thread.is_alive()


def test_outbox_lag_is_the_oldest_due_pending_reminder(app, db, client, clock):
    from app.identity.services import find_or_create_user

    clock.set(NOW)
    user = find_or_create_user("lag-user")
    db.session.flush()
    _notification(db, user.id, "credential:1", "pending", NOW - timedelta(minutes=10))
    _notification(db, user.id, "credential:2", "pending", NOW - timedelta(minutes=2))
    _notification(db, user.id, "credential:3", "pending", NOW + timedelta(minutes=5))  # not due yet
    _notification(db, user.id, "credential:4", "sent", NOW - timedelta(days=3))
    _notification(db, user.id, "credential:5", "failed", NOW - timedelta(days=1))
    db.session.commit()

    body = client.get("/readyz").get_json()
    assert body["outbox"] == {"due": 2, "oldest_due_seconds": 600.0}
    assert body["checks"]["outbox"] == "ok"
    metrics = scrape(client)
    assert value(metrics, "xgz_reminder_outbox_due") == 2
    assert value(metrics, "xgz_reminder_outbox_oldest_due_seconds") == 600
    assert value(metrics, "xgz_reminder_outbox_messages", status="pending") == 3
    assert value(metrics, "xgz_reminder_outbox_messages", status="failed") == 1
    assert value(metrics, "xgz_metrics_source_up", source="reminder_outbox") == 1

    clock.advance(timedelta(minutes=10))  # the oldest has now waited 20 minutes
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"]["outbox"] == "lagging" and ready.get_json()["status"] == "degraded"


def test_the_lag_query_uses_the_status_index(app, db):
    """/readyz runs it every few seconds on a table that only grows: never a full scan."""
    from sqlalchemy import event

    from app.reminders.observability import due_backlog

    statements = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        due_backlog(NOW)
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    statement, parameters = statements[-1]
    connection = db.session.connection()
    if db.engine.dialect.name == "sqlite":
        explain = "EXPLAIN QUERY PLAN "
    else:  # a few test rows make a sequential scan cheapest; the index must still be usable
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        explain = "EXPLAIN "
    plan = " ".join(str(row) for row in connection.exec_driver_sql(explain + statement, parameters).all())
    db.session.rollback()
    assert "ix_notifications_status_next_attempt_at" in plan
