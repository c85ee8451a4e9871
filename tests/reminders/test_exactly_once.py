"""R2: two dispatchers (threads with their own sessions, and real processes) over the same due
rows, and a rerun after a process killed mid-batch: every dedupe key reaches WeChat once."""
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from app.reminders.dispatcher import LEASE, dispatch
from app.reminders.models import Notification
from tests.conftest import at
from tests.reminders.conftest import dispatch_in_parallel, messages_by_nid

ROOT = Path(__file__).resolve().parents[2]
SEND = "cgi-bin/message/subscribe/send"


def _seed(make_user, consent, remind, n, prefix):
    for i in range(n):
        user = make_user(f"{prefix}-{i}")
        consent(user, "credential_expiry")
        remind(user, subject=f"credential:{i}")


def _pg_only(app):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("concurrent claimers need PostgreSQL (FOR UPDATE SKIP LOCKED); on SQLite the "
                    "scheduler's leader lock makes the dispatcher a single claimer")


def test_two_dispatchers_started_together_send_each_key_once(app, db, wechat_sim, clock, make_user,
                                                            consent, remind):
    _pg_only(app)
    clock.set(at("2026-03-01 09:00"))
    _seed(make_user, consent, remind, 60, "pair")
    now = clock.now()
    results = dispatch_in_parallel(app, now, batch_size=5)
    assert sum(r.sent for r in results) == 60
    assert all(r.claimed > 0 for r in results), "both dispatchers should have taken a share"
    counts = messages_by_nid(wechat_sim.sim_state)
    assert len(counts) == 60 and set(counts.values()) == {1}
    assert db.session.query(Notification).filter_by(status="sent").count() == 60


def _flask(app, wechat_sim, *args: str, **settings: str) -> subprocess.Popen:
    # No REDIS_URL: the process fetches its own token from the simulator, never a stale one
    # another run left in a shared Redis (the test is about the database claim, not Redis).
    env = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "WECHAT_API_BASE_URL": wechat_sim.base_url, "LOG_LEVEL": "WARNING", **settings}
    env.pop("REDIS_URL", None)
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "reminders", "run", *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_two_scheduler_processes_at_once_send_each_key_once(app, db, wechat_sim, clock, make_user,
                                                           consent, remind):
    _pg_only(app)
    clock.set(at("2026-03-01 09:00"))
    _seed(make_user, consent, remind, 40, "proc")
    now = "2026-03-01T09:00"
    processes = [_flask(app, wechat_sim, "dispatch", "--now", now) for _ in range(2)]
    outputs = [p.communicate(timeout=60)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    counts = messages_by_nid(wechat_sim.sim_state)
    assert len(counts) == 40 and set(counts.values()) == {1}
    db.session.expire_all()
    assert db.session.query(Notification).filter_by(status="sent").count() == 40


def test_a_process_killed_mid_batch_then_rerun_sends_each_key_once(app, db, wechat_sim, clock, make_user,
                                                                 consent, remind):
    clock.set(at("2026-03-01 09:00"))
    _seed(make_user, consent, remind, 12, "kill")
    # Batches of 4 and 4 senders: a batch is fenced as a whole, its calls go out together, and
    # the next batch is fenced and queued behind them. The first call (of the first batch) hangs
    # in WeChat; the process is killed while it waits (kill -9: no cleanup).
    wechat_sim.sim_state.add_fault(SEND, delay=3)
    process = _flask(app, wechat_sim, "dispatch", "--now", "2026-03-01T09:00", DISPATCH_BATCH_SIZE="4",
                     DISPATCH_WORKERS="4")
    _wait_for(lambda: len(wechat_sim.sim_state.received(SEND)) >= 8, 30)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    # The hung call still reaches WeChat after the process died: its outcome is unknown to us.
    _wait_for(lambda: len(wechat_sim.sim_state.delivered()) >= 8, 30)

    db.session.expire_all()
    statuses = [n.status for n in db.session.query(Notification).order_by(Notification.id)]
    # The first two batches are fenced and unrecorded; the third was never claimed.
    assert statuses == ["sending"] * 8 + ["pending"] * 4

    rerun = _flask(app, wechat_sim, "dispatch", "--now", (at("2026-03-01 09:00") + LEASE + timedelta(minutes=1)
                                                          ).isoformat() + "+00:00")
    output = rerun.communicate(timeout=60)[0]
    assert rerun.returncode == 0, output
    counts = messages_by_nid(wechat_sim.sim_state)
    assert len(counts) == 12 and set(counts.values()) == {1}
    db.session.expire_all()
    rows = db.session.query(Notification).order_by(Notification.id).all()
    # At most once: the fenced batches are never sent again (their outcome is unknown to us).
    assert [n.status for n in rows] == ["failed"] * 8 + ["sent"] * 4
    assert {n.last_error for n in rows if n.status == "failed"} == {"outcome_unknown"}
    # Nothing more, however often it runs again.
    dispatch(at("2026-03-02 09:00"))
    assert len(wechat_sim.sim_state.delivered()) == 12


def _wait_for(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
