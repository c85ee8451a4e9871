"""Issue 13 item 5 (and the nginx half of item 1): two API hosts behind the shipped nginx
locations, sharing PostgreSQL, Redis and the object store, and two reminder schedulers.

- a photo uploaded through host a is served by host b (neither has it on its own disk);
- a badge change made through a is seen through b at once (within VERSION_RECHECK, 0.25 s);
- nginx: the body limit lets a 5 MB photo through to the API's own answer, the public badge is
  cached and revalidated, answers are gzipped, /metrics is not public, the WeChat verification
  file is served, the access log holds no token;
- killing the leading scheduler (SIGKILL: no clean release) lets the standby lead within
  SCHEDULER_LEASE_SECONDS plus its retry interval, and every reminder is sent exactly once.

Runs in the PostgreSQL + Redis leg of `make test` (which installs Debian's nginx when missing)."""
from __future__ import annotations

import gzip
import io
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import boto3
import psycopg
import pytest
import redis
import requests
from PIL import Image

from app.badge.cache import VERSION_RECHECK
from tests.conftest import drop_postgres_schema, postgres_schema_url
from tests.deploy.county import (BIN, PROJECT, County, flask, start, start_api_host, start_nginx, wait_until)
from tests.s3server import start_moto_process

BASE_DB = os.environ.get("DATABASE_URL", "")
BASE_REDIS = os.environ.get("REDIS_URL", "")
pytestmark = [
    pytest.mark.skipif(not (BASE_DB.startswith("postgresql") and BASE_REDIS),
                       reason="两台主机的部署测试需要 PostgreSQL 与 Redis（make test 的第二轮）"),
    pytest.mark.skipif(shutil.which("nginx") is None,
                       reason="未安装 nginx（make test 以 root 运行时会安装：apt-get install nginx）"),
]
LEASE_SECONDS = 4
RETRY_SECONDS = 1
VERIFY_FILE, VERIFY_CONTENT = "Zx81Yw5tPq.txt", "a1b2c3d4e5f6"
REDIS_DB = 13  # a database of its own: the schedulers' lock and every counter start empty


def _redis_url(db: int) -> str:
    parts = urlsplit(BASE_REDIS)
    return urlunsplit(parts._replace(path=f"/{db}"))


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture(scope="module")
def county(tmp_path_factory, wechat_sim):
    work = tmp_path_factory.mktemp("county")
    schema = f"county_{os.getpid()}"
    database_url = postgres_schema_url(BASE_DB, schema)
    shared_redis = redis.Redis.from_url(_redis_url(REDIS_DB))
    shared_redis.flushdb()
    processes, stops = [], []
    try:
        store = start_moto_process()
        stops.append(store.stop)
        endpoint = store.endpoint_url
        bucket = "xgz-photos"
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="county", aws_secret_access_key="county-secret")
        s3.create_bucket(Bucket=bucket)
        env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": _redis_url(REDIS_DB),
               "SECRET_KEY": "county-secret-key-for-two-hosts-0123456789",
               "WECHAT_API_BASE_URL": wechat_sim.base_url, "PROXY_COUNT": "1",
               "STORAGE_URL": f"s3://{bucket}/photos", "STORAGE_S3_ENDPOINT_URL": endpoint,
               "STORAGE_S3_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "county",
               "AWS_SECRET_ACCESS_KEY": "county-secret",
               "WECHAT_DOMAIN_VERIFY_FILE": VERIFY_FILE, "WECHAT_DOMAIN_VERIFY_CONTENT": VERIFY_CONTENT,
               "SCHEDULER_LEASE_SECONDS": str(LEASE_SECONDS), "GUNICORN_ACCESSLOG": "-"}
        env.pop("XGZ_OUTAGE_TESTS", None)
        hosts_env = {}
        for name in ("a", "b"):  # what differs between two machines: their local disk
            instance = work / f"host-{name}"
            instance.mkdir()
            hosts_env[name] = {**env, "INSTANCE_DIR": str(instance), "UPLOAD_DIR": str(instance / "uploads")}
        flask(hosts_env["a"], "db", "upgrade")
        flask(hosts_env["a"], "seed", "demo")
        hosts = {}
        for name in ("a", "b"):
            process, base = start_api_host(f"host-{name}", hosts_env[name], work)
            processes.append(process)
            hosts[name] = base
        proxy, nginx_base = start_nginx(work / "nginx", hosts)
        processes.append(proxy)
        yield County(env=hosts_env, nginx=nginx_base, hosts=hosts, processes=processes,
                     s3_endpoint=endpoint, bucket=bucket)
    finally:
        for process in reversed(processes):
            process.stop()
        for stop in stops:
            stop()
        shared_redis.flushdb()
        drop_postgres_schema(BASE_DB, schema)


def _login(county: County, openid: str, host: str = "a") -> dict[str, str]:
    response = requests.post(f"{county.nginx}/api/v1/auth/login", json={"code": f"sim-{openid}"},
                             headers=county.via(host), timeout=10)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def _sql(county: County, query: str, *params):
    with psycopg.connect(_libpq(county.env["a"]["DATABASE_URL"]), autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def _photo(side: int = 900) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((side, side), 60).convert("RGB").save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def _demo_stall(county: County) -> tuple[int, str]:
    """The demo merchant's merchant id and the token of a stall it holds."""
    rows = _sql(county, """
        SELECT m.id, s.token FROM merchants m
        JOIN users u ON u.id = m.owner_id
        JOIN stalls s ON s.merchant_id = m.id
        WHERE u.openid = 'demo-merchant' ORDER BY s.id LIMIT 1""")
    assert rows, "the demo data has a merchant holding a stall"
    return rows[0]


def test_photo_uploaded_through_one_host_is_served_by_the_other(county):
    merchant = _login(county, "demo-merchant")
    merchant_id, _ = _demo_stall(county)
    photo = _photo()
    response = requests.post(
        f"{county.nginx}/api/v1/merchants/{merchant_id}/credentials", headers={**merchant, **county.via("a")},
        data={"kind": "food_business", "number": "JY14504030099999", "issuer": "梧州市万秀区市场监督管理局",
              "valid_from": "2025-01-01", "valid_until": "2029-12-31", "long_term": "false"},
        files={"photo": ("permit.jpg", photo, "image/jpeg")}, timeout=30)
    assert response.status_code == 201, response.text
    credential = response.json()
    key = _sql(county, "SELECT photo_key FROM credentials WHERE id = %s", credential["id"])[0][0]

    # In the object store, and on neither host's disk.
    s3 = boto3.client("s3", endpoint_url=county.s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="county", aws_secret_access_key="county-secret")
    stored = [o["Key"] for o in s3.list_objects_v2(Bucket=county.bucket).get("Contents", [])]
    assert any(key in name for name in stored), stored
    for name in ("a", "b"):
        assert not list(Path(county.env[name]["UPLOAD_DIR"]).glob("**/*.jpg"))

    served = {}
    for name in ("a", "b"):
        got = requests.get(f"{county.nginx}/api/v1/credentials/{credential['id']}/photo",
                           headers={**merchant, **county.via(name)}, timeout=10)
        assert got.status_code == 200 and got.headers["Content-Type"] == "image/jpeg", got.text[:300]
        served[name] = got.content
    assert served["a"] == served["b"]
    assert Image.open(io.BytesIO(served["b"])).size == (900, 900)


def _permits(badge: dict) -> dict:
    return next(item for item in badge["items"] if item["key"] == "permits")


def _seen_within(url: str, is_new, bound: float) -> dict:
    """Read `url` until `is_new(badge)`; the badge must turn within `bound` seconds of now (the
    change's commit), and stay turned."""
    started = time.monotonic()
    while True:
        badge = requests.get(url, timeout=10).json()
        if is_new(badge):
            break
        assert time.monotonic() - started <= bound, f"still the old badge after {bound} s: {badge}"
        time.sleep(0.02)
    # Past the bound, every worker of the host (not just the one that answered) has it.
    time.sleep(max(0.0, started + bound - time.monotonic()))
    for _ in range(6):
        assert is_new(requests.get(url, timeout=10).json())
    return badge


def test_badge_change_through_one_host_is_seen_through_the_other_at_once(county):
    """At once means within VERSION_RECHECK (0.25 s): a worker trusts a badge version it confirmed
    that recently, so a burst of scans of one sticker costs no query (app/badge/cache.py); the
    0.2 s on top is this test's own HTTP round trips."""
    merchant_id, token = _demo_stall(county)
    merchant = _login(county, "demo-merchant")
    manager = _login(county, "demo-manager", host="b")
    shown = requests.get(f"{county.hosts['b']}/api/v1/public/stalls/{token}", timeout=10).json()
    assert _permits(shown)["ok"] is True  # b has read (and cached) the badge before the change
    permit = _sql(county, "SELECT id FROM credentials WHERE merchant_id = %s AND kind = 'food_business' "
                          "AND status = 'verified'", merchant_id)[0][0]

    # Revoked through host a: host b's very next read no longer shows it.
    revoked = requests.post(f"{county.hosts['a']}/api/v1/credentials/{permit}/revoke",
                            json={"reason": "许可证已注销"}, headers=manager, timeout=10)
    assert revoked.status_code == 200, revoked.text
    after = _seen_within(f"{county.hosts['b']}/api/v1/public/stalls/{token}",
                         lambda badge: _permits(badge)["ok"] is not True, VERSION_RECHECK + 0.2)
    assert after["verdict"] != shown["verdict"]

    # A new permit uploaded and verified through b: host a's very next read shows it.
    upload = requests.post(
        f"{county.hosts['b']}/api/v1/merchants/{merchant_id}/credentials", headers=merchant,
        data={"kind": "food_business", "number": "JY14504030088888", "issuer": "梧州市万秀区市场监督管理局",
              "valid_from": "2025-01-01", "valid_until": "2030-06-30", "long_term": "false"},
        files={"photo": ("permit.jpg", _photo(300), "image/jpeg")}, timeout=30)
    assert upload.status_code == 201, upload.text
    decided = requests.post(f"{county.hosts['b']}/api/v1/credentials/{upload.json()['id']}/review",
                            json={"decision": "approve"}, headers=manager, timeout=10)
    assert decided.status_code == 200, decided.text
    again = _seen_within(f"{county.hosts['a']}/api/v1/public/stalls/{token}",
                         lambda badge: _permits(badge)["ok"] is True, VERSION_RECHECK + 0.2)
    assert [d["number"] for d in _permits(again)["documents"]] == ["JY14504030088888"]


def test_nginx_caches_the_badge_and_revalidates(county):
    _, token = _demo_stall(county)
    url = f"{county.nginx}/api/v1/public/stalls/{token}"
    first = requests.get(url, timeout=10)
    second = requests.get(url, timeout=10)
    assert first.status_code == second.status_code == 200
    assert first.headers["X-Cache-Status"] in {"MISS", "EXPIRED", "REVALIDATED", "HIT"}
    assert second.headers["X-Cache-Status"] == "HIT"
    assert second.json() == first.json()
    max_age = int(re.search(r"max-age=(\d+)", first.headers["Cache-Control"]).group(1))
    assert 0 < max_age <= 30
    # The same page as H5 (/s/<token>) is cached on its own key.
    assert requests.get(f"{county.nginx}/s/{token}", timeout=10).headers["X-Cache-Status"] in {"MISS", "HIT"}


def test_nginx_passes_photos_up_to_the_apis_limit_and_answers_beyond_in_the_envelope(county):
    merchant = _login(county, "demo-merchant")
    merchant_id, _ = _demo_stall(county)
    form = {"kind": "food_business", "number": "JY1", "issuer": "某局", "valid_from": "2025-01-01",
            "valid_until": "2029-12-31", "long_term": "false"}
    # 6 MB: over the photo limit (5 MB) but under nginx's body limit: the API's own 413 envelope.
    big = requests.post(f"{county.nginx}/api/v1/merchants/{merchant_id}/credentials", headers=merchant,
                        data=form, files={"photo": ("p.jpg", b"\xff\xd8\xff" + b"0" * (6 * 1024 * 1024), "image/jpeg")},
                        timeout=30)
    assert big.status_code == 413 and big.json()["error"]["code"] == "PHOTO_TOO_LARGE", big.text[:300]
    # 12 MB: nginx refuses it before any API host is busy, still in the envelope.
    huge = requests.post(f"{county.nginx}/api/v1/merchants/{merchant_id}/credentials", headers=merchant,
                         data=form, files={"photo": ("p.jpg", b"0" * (12 * 1024 * 1024), "image/jpeg")}, timeout=30)
    assert huge.status_code == 413
    assert huge.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert "过大" in huge.json()["error"]["message"]


def test_nginx_gzip_verification_file_metrics_and_token_free_log(county):
    _, token = _demo_stall(county)
    spec = requests.get(f"{county.nginx}/api/v1/openapi.json", headers={"Accept-Encoding": "gzip"}, timeout=10,
                        stream=True)
    assert spec.headers.get("Content-Encoding") == "gzip"
    assert b'"openapi"' in gzip.decompress(spec.raw.read())
    verify = requests.get(f"{county.nginx}/{VERIFY_FILE}", timeout=10)
    assert verify.status_code == 200 and verify.text == VERIFY_CONTENT
    assert requests.get(f"{county.nginx}/Other1234.txt", timeout=10).status_code == 404
    assert requests.get(f"{county.nginx}/metrics", timeout=10).status_code == 404
    requests.get(f"{county.nginx}/api/v1/care-stations?lat=23.476912&lng=111.279055&radius_m=3000", timeout=10)
    time.sleep(0.2)
    log = (county.processes[-1].log.parent / "access.log").read_text()
    assert "/api/v1/public/stalls/<token>" in log and "/s/<token>" in log
    assert token not in log and "23.476912" not in log and VERIFY_FILE not in log


def _scheduler(county: County, name: str, work) -> object:
    env = {**county.env["a" if name == "s1" else "b"], "LOG_LEVEL": "INFO"}
    return start(name, [str(BIN / "flask"), "--app", "wsgi", "scheduler", "run", "--retry", str(RETRY_SECONDS)],
                 env, work)


def _tell(county: County, openids: list[str], batch: str) -> None:
    """Decision notices for these users, written as the app writes them (app.reminders.notices)."""
    script = (
        "import sys\n"
        "from app import create_app\n"
        "from app.extensions import db\n"
        "from app.identity.models import User\n"
        "from app.reminders.notices import tell\n"
        "app = create_app()\n"
        "with app.app_context():\n"
        "    for openid in sys.argv[2:]:\n"
        "        user = db.session.query(User).filter_by(openid=openid).one()\n"
        "        tell(user.id, kind='drill', subject=f'drill:{sys.argv[1]}:{openid}', outcome='changed',\n"
        "             title='演练通知', body=f'第{sys.argv[1]}批')\n"
        "    db.session.commit()\n")
    done = subprocess.run([str(BIN / "python"), "-c", script, batch, *openids], cwd=PROJECT,
                          env=county.env["a"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]


def _drill_sent(wechat_sim) -> int:
    return sum(m["body"]["touser"].startswith("drill-rider-") for m in wechat_sim.sim_state.delivered())


def test_standby_scheduler_takes_over_and_nothing_is_sent_twice(county, wechat_sim, tmp_path):
    riders = [f"drill-rider-{i}" for i in range(12)]
    for openid in riders:  # each allows two review_result messages (wx.requestSubscribeMessage twice)
        headers = _login(county, openid)
        for _ in range(2):
            consent = requests.post(f"{county.nginx}/api/v1/me/subscriptions",
                                    json={"template_keys": ["review_result"]}, headers=headers, timeout=10)
            assert consent.status_code == 200, consent.text
    wechat_sim.sim_state.reset()
    _tell(county, riders, "1")

    first = _scheduler(county, "s1", tmp_path)
    try:
        wait_until(lambda: "this process is the leader" in first.text(), 30, "s1 to lead")
        second = _scheduler(county, "s2", tmp_path)
        wait_until(lambda: "another process is the leader" in second.text(), 30, "s2 to stand by")
        # The new leader sends what was due at once.
        wait_until(lambda: _drill_sent(wechat_sim) >= len(riders), 30, "batch 1 sent by s1")

        _tell(county, riders, "2")
        killed_at = time.monotonic()
        first.stop(signal.SIGKILL)  # no release: the standby must wait out the lease
        wait_until(lambda: "this process is the leader" in second.text(), LEASE_SECONDS + RETRY_SECONDS + 10,
                   "s2 to take over")
        took_over = time.monotonic() - killed_at
        assert took_over <= LEASE_SECONDS + RETRY_SECONDS + 3, took_over
        wait_until(lambda: _drill_sent(wechat_sim) >= 2 * len(riders), 30, "batch 2 sent by s2")
        # Every host's /readyz names the new leader from its heartbeat.
        ready = requests.get(f"{county.hosts['a']}/readyz", timeout=10).json()
        assert ready["checks"]["scheduler"] == "ok", ready
        assert ready["scheduler"]["holder"].endswith(f":{second.popen.pid}"), ready
        time.sleep(2)  # anything sent twice would arrive now
    finally:
        first.stop(signal.SIGKILL)
        if "second" in locals():
            second.stop()
    delivered = [m for m in wechat_sim.sim_state.delivered() if m["body"]["touser"].startswith("drill-rider-")]
    keys = [(m["body"]["touser"], m["body"]["data"]["thing3"]["value"]) for m in delivered]
    assert len(keys) == 2 * len(riders) and len(set(keys)) == len(keys), keys
    statuses = _sql(county, "SELECT status, count(*) FROM notifications WHERE kind = 'drill' GROUP BY status")
    assert statuses == [("sent", 2 * len(riders))]
