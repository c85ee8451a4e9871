"""R3: Redis stopped mid-run. Login keeps answering from the database, the WeChat token falls
back to the in-process store, readiness reports 'degraded' rather than failing."""
import shutil
import subprocess
import time

import pytest

from tests.conftest import error_code
from tests.s3server import free_port


@pytest.fixture
def private_redis():
    if not shutil.which("redis-server"):
        pytest.skip("redis-server not installed")
    port = free_port()
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield process, f"redis://127.0.0.1:{port}/0"
    if process.poll() is None:
        process.kill()
    process.wait()


def test_login_and_wechat_calls_survive_redis_stopping(_app, app, db, private_redis, wechat_sim):
    from app import create_app
    from config import TestConfig

    process, url = private_redis
    config = TestConfig()
    config.SQLALCHEMY_DATABASE_URI = _app.config["SQLALCHEMY_DATABASE_URI"]
    config.REDIS_URL = url
    config.WECHAT_API_BASE_URL = _app.config["WECHAT_API_BASE_URL"]
    redis_app = create_app(config)
    client = redis_app.test_client()

    with redis_app.app_context():
        from app.extensions import kv

        first = client.post("/api/v1/auth/login", json={"code": "sim-before-outage"})
        assert first.status_code == 200
        token = first.get_json()["token"]
        bound = client.post("/api/v1/auth/phone", json={"code": "sim-phone-13700137000"},
                            headers={"Authorization": f"Bearer {token}"})
        assert bound.status_code == 200
        assert kv.redis.keys("xgz:wechat:*"), "the access token should live in Redis"
        assert client.get("/readyz").get_json()["checks"]["redis"] == "ok"

        process.terminate()
        process.wait(timeout=5)

        after = client.post("/api/v1/auth/login", json={"code": "sim-after-outage"})
        assert after.status_code == 200, after.get_json()
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
        rebound = client.post("/api/v1/auth/phone", json={"code": "sim-phone-13700137001"},
                              headers={"Authorization": f"Bearer {after.get_json()['token']}"})
        assert rebound.status_code == 200, rebound.get_json()
        ready = client.get("/readyz")
        assert ready.status_code == 200
        body = ready.get_json()  # (the scheduler and outbox checks beside: tests/reminders/test_observability.py)
        assert body["status"] == "degraded"
        assert {name: body["checks"][name] for name in ("database", "redis")} == {"database": "ok", "redis": "down"}
        bad = client.post("/api/v1/auth/login", json={"code": "nope"})
        assert bad.status_code == 401 and error_code(bad) == "WECHAT_CODE_INVALID"
    with redis_app.app_context():
        from app.extensions import db as _db

        _db.engine.dispose()
