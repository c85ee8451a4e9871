"""The key-value store degrades to the in-process store when Redis is unreachable."""
import threading

import redis as redis_lib

from app.core.kv import KeyValueStore


class _App:
    def __init__(self, url):
        self.config = {"REDIS_URL": url}
        self.extensions = {}


def test_local_store_ttl_nx_and_checked_release():
    kv = KeyValueStore()
    kv.init_app(_App(None))
    assert kv.set("a", "1", nx=True)
    assert not kv.set("a", "2", nx=True)
    assert kv.get("a") == b"1"
    with kv.lock("job", ttl=5, wait=0) as got:
        assert got
        with kv.lock("job", ttl=5, wait=0) as again:
            assert not again
    with kv.lock("job", ttl=5, wait=0) as after_release:
        assert after_release


def test_lock_is_exclusive_across_threads():
    kv = KeyValueStore()
    kv.init_app(_App(None))
    inside, peak, guard = [0], [0], threading.Lock()

    def worker():
        with kv.lock("x", ttl=5, wait=5) as got:
            assert got
            with guard:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
            with guard:
                inside[0] -= 1

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 1


def test_unreachable_redis_falls_back_without_raising(caplog):
    kv = KeyValueStore()
    kv.init_app(_App("redis://127.0.0.1:1/0"))  # nothing listens on port 1
    assert kv.set("k", "v", ttl=10)
    assert kv.get("k") == b"v"
    assert kv.incr("n") == 1
    assert not kv.ping()
    assert "redis unavailable" in caplog.text


def test_real_redis_when_configured(app):
    from app.extensions import kv

    if not kv.shared:
        import pytest

        pytest.skip("REDIS_URL not set")
    kv.set("shared-key", "v", ttl=5)
    assert isinstance(kv.redis, redis_lib.Redis)
    assert kv.redis.get(kv.prefix + "shared-key") == b"v"
