"""Change counters (app/core/generations.py): shared by a host's workers through a file, across
hosts through Redis; a missing Redis counter starts at a random value; reading them from many
threads does not use up the shared Redis client's connections."""
import os
import threading

import pytest

from app.core import generations


def test_host_counters_are_seen_by_another_process(tmp_path):
    counters = generations.HostCounters(tmp_path / "generations.bin")
    before = counters.current(["points:1", "points:2"])
    pid = os.fork()
    if pid == 0:
        try:
            generations.HostCounters(tmp_path / "generations.bin").bump(["points:1"])
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    after = counters.current(["points:1", "points:2"])
    assert after[0] == before[0] + 1 and after[1] == before[1]


def test_redis_counters_from_many_threads_leave_the_pool_alone(app):
    from app.extensions import kv

    if not kv.shared:
        pytest.skip("needs REDIS_URL")
    counters = generations.SharedCounters(app.extensions["kv"])
    first = counters.current(["principal:7"])[0]
    assert first is not None and first > 1000  # started at a random value, not at 1
    seen = []

    def read():
        seen.append(counters.current(["principal:7"])[0])

    threads = [threading.Thread(target=read) for _ in range(150)]  # above redis-py's pool of 100
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [first] * 150
    counters.bump(["principal:7"])
    assert counters.current(["principal:7"])[0] == first + 1
    assert kv.set("still-shared", b"1") and kv.redis.get(kv.prefix + "still-shared") == b"1"
