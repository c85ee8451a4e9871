"""The scheduler process: Asia/Shanghai triggers, job options, the leader lock (one leader of
two contenders, on each backend this run has), and leadership handed over when the leader stops."""
import os
import threading
from datetime import datetime, timezone

import pytest

from app.core.time import SHANGHAI
from app.reminders.leader import FileLeaderLock, PostgresLeaderLock, RedisLeaderLock, make_leader_lock
from app.reminders.scheduler import build_scheduler, job_table, run_scheduler

UTC = timezone.utc


def test_daily_reminders_fire_at_nine_in_shanghai_not_utc(app):
    trigger = build_scheduler(app).get_job("credential_expiry").trigger
    fire = trigger.get_next_fire_time(None, datetime(2026, 3, 1, 0, 30, tzinfo=UTC))
    assert fire == datetime(2026, 3, 1, 9, 0, tzinfo=SHANGHAI)
    assert fire.astimezone(UTC) == datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
    # Past 09:00 in Shanghai (02:00 UTC) but before 09:00 UTC: the next run is tomorrow morning
    # in Shanghai, never 09:00 UTC today.
    fire = trigger.get_next_fire_time(None, datetime(2026, 3, 1, 2, 0, tzinfo=UTC))
    assert fire == datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)


def test_daily_time_is_configurable(app, monkeypatch):
    monkeypatch.setitem(app.config, "REMINDERS_DAILY_AT", "07:45")
    trigger = build_scheduler(app).get_job("credential_expiry").trigger
    assert trigger.get_next_fire_time(None, datetime(2026, 3, 1, tzinfo=SHANGHAI)) == \
        datetime(2026, 3, 1, 7, 45, tzinfo=SHANGHAI)


def test_every_job_coalesces_runs_one_instance_and_has_a_misfire_grace(app):
    scheduler = build_scheduler(app)
    names = {job.name for job in job_table(app)}
    assert names == {"credential_expiry", "pledge_renewal", "activity_start", "theme_day_due",
                     "general_meeting_due", "review_digest", "dispatch", "purge", "purge_coordinates",
                     "badge_sweep", "coverage_refresh", "report_deadlines", "report_digest"}
    for name in names:
        job = scheduler.get_job(name)
        assert job.coalesce is True and job.max_instances == 1, name
        assert 0 < job.misfire_grace_time <= 6 * 3600, name
    assert str(scheduler.timezone) == "Asia/Shanghai"
    # The dispatcher runs every minute and never lets a backlog pile up behind it.
    dispatch = scheduler.get_job("dispatch")
    start = datetime(2026, 3, 1, 9, 0, 30, tzinfo=SHANGHAI)
    assert dispatch.trigger.get_next_fire_time(None, start) == datetime(2026, 3, 1, 9, 1, tzinfo=SHANGHAI)
    assert dispatch.misfire_grace_time < 60


def _contenders(app, tmp_path):
    """Pairs of locks under one name for every backend this run can reach."""
    name = f"test-leader-{os.getpid()}"
    yield "file", FileLeaderLock(str(tmp_path / "leader.lock")), FileLeaderLock(str(tmp_path / "leader.lock"))
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("postgresql"):
        yield "postgresql", PostgresLeaderLock(url, name), PostgresLeaderLock(url, name)
    store = app.extensions["kv"]
    if store.redis is not None:
        key = f"{store.prefix}leader:{name}"
        yield "redis", RedisLeaderLock(store.redis, key), RedisLeaderLock(store.redis, key)


def test_two_contenders_one_leader(app, tmp_path):
    seen = []
    for kind, first, second in _contenders(app, tmp_path):
        seen.append(kind)
        try:
            assert first.acquire() is True, kind
            assert second.acquire() is False, kind
            assert first.renew() is True and second.held is False, kind
            first.release()
            assert second.acquire() is True, kind
            assert first.acquire() is False, kind
        finally:
            first.release()
            second.release()
    assert "file" in seen


def test_redis_lock_is_not_renewed_or_released_by_a_former_holder(app):
    store = app.extensions["kv"]
    if store.redis is None:
        pytest.skip("needs REDIS_URL (the Redis leader lock)")
    key = f"{store.prefix}leader:stolen-{os.getpid()}"
    first, second = RedisLeaderLock(store.redis, key, ttl=30), RedisLeaderLock(store.redis, key, ttl=30)
    assert first.acquire()
    store.redis.delete(key)  # as if the lease had run out while the process was paused
    assert second.acquire()
    assert first.renew() is False  # the checked extend sees someone else's token
    first.held = True
    first.release()  # the checked delete leaves the new leader's key alone
    assert store.redis.get(key) == second.token.encode()
    second.release()
    assert store.redis.get(key) is None


def test_make_leader_lock_follows_the_configured_services(app):
    lock = make_leader_lock(app, name=f"kind-{os.getpid()}")
    if app.extensions["kv"].redis is not None:
        assert lock.kind == "redis"
    elif app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        assert lock.kind == "postgresql"
    else:
        assert lock.kind == "file"


class WatchedLock(FileLeaderLock):
    """Tells the test when an attempt to lead was refused, so it needn't sleep to find out."""

    def __init__(self, path):
        super().__init__(path)
        self.refused = threading.Event()

    def acquire(self):
        got = super().acquire()
        if not got:
            self.refused.set()
        return got


def test_the_waiting_scheduler_takes_over_when_the_leader_stops(app, tmp_path):
    path = str(tmp_path / "handover.lock")
    locks = {"a": WatchedLock(path), "b": WatchedLock(path)}
    leading = {"a": threading.Event(), "b": threading.Event()}
    stops = {"a": threading.Event(), "b": threading.Event()}
    threads = {
        name: threading.Thread(target=run_scheduler, kwargs=dict(
            app=app, lock=locks[name], stop=stops[name], retry_seconds=0.02,
            on_lead=lambda scheduler, name=name: leading[name].set()), daemon=True)
        for name in ("a", "b")
    }
    threads["a"].start()
    assert leading["a"].wait(10)
    threads["b"].start()
    assert locks["b"].refused.wait(10)
    assert not leading["b"].is_set()  # b keeps waiting while a leads
    stops["a"].set()
    threads["a"].join(10)
    assert not threads["a"].is_alive()
    assert leading["b"].wait(10)  # …and leads once a has let go
    stops["b"].set()
    threads["b"].join(10)
    assert not threads["b"].is_alive()
