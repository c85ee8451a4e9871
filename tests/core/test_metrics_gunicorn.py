"""Issue 13 item 4 under the shipped gunicorn config, for real: two workers' counters add up in
/metrics (prometheus_client's multiprocess mode), survive a worker's death, start from zero at
each start; with LOG_FORMAT=json every line the deployment writes is JSON, one access line per
request."""
import json
import os
import signal
import socket
import time
from urllib.parse import urlsplit

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.core.test_gunicorn_config import _get
from tests.deploy.county import api_host_on_sqlite


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    instance = tmp_path_factory.mktemp("metrics-instance")
    metrics_dir = instance / "prom"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"left over from a previous run")
    (metrics_dir / "keep.txt").write_text("not ours")
    with api_host_on_sqlite(instance, workers=2, METRICS_DIR=str(metrics_dir), LOG_FORMAT="json") as (base, process):
        yield base, urlsplit(base).port, process.log, metrics_dir


def _count(base: str, route: str) -> float:
    status, _, body = _get(base + "/metrics")
    assert status == 200
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == "xgz_http_requests_total" and sample.labels == {
                    "route": route, "method": "GET", "status": "200"}:
                return sample.value
    return 0.0


def _worker_pids(metrics_dir) -> set[int]:
    return {int(path.stem.rsplit("_", 1)[1]) for path in metrics_dir.glob("counter_*.db")}


def test_the_directory_starts_empty_of_old_counters(served):
    _, _, _, metrics_dir = served
    assert not (metrics_dir / "counter_1.db").exists()
    assert (metrics_dir / "keep.txt").exists()


def test_two_workers_counts_add_up_and_survive_a_worker(served):
    base, port, _, metrics_dir = served
    start = _count(base, "/healthz")
    # One worker is kept busy reading a request that has not finished arriving; the other
    # answers everything meanwhile. So each worker serves some of them.
    stalled = socket.create_connection(("127.0.0.1", port))
    stalled.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    time.sleep(0.5)
    for _ in range(5):
        assert _get(base + "/healthz")[0] == 200
    stalled.sendall(b"Connection: close\r\n\r\n")
    assert stalled.recv(4096).startswith(b"HTTP/1.1 200")
    stalled.close()
    assert _count(base, "/healthz") - start == 6
    pids = _worker_pids(metrics_dir)
    assert len(pids) >= 2, pids  # both workers wrote their own counters

    victim = max(pids)
    try:
        os.kill(victim, signal.SIGKILL)
    except ProcessLookupError:
        pass
    time.sleep(1.5)  # the master notices (child_exit marks it dead) and forks a replacement
    assert _count(base, "/healthz") - start >= 6  # its counts stay in the totals


def test_json_mode_every_line_is_json_and_one_access_line_per_request(served):
    base, _, log, _ = served
    _get(base + "/api/v1/care-stations?lat=23.476912&lng=111.279055&radius_m=3000")
    _get(base + "/s/SecretTok3n9", headers={"Authorization": "Bearer abc.def.ghi"})
    time.sleep(0.3)
    text = log.read_text(errors="replace")
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert any(line["logger"] == "gunicorn.error" for line in lines)  # gunicorn's own lines too
    stations = [line for line in lines if line.get("route") == "/api/v1/care-stations"]
    assert len(stations) == 1 and stations[0]["status"] == 200
    assert [line["status"] for line in lines if line.get("route") == "/s/<token>"] == [404]
    assert "rid=" not in text  # gunicorn's access log is off
    for secret in ("23.476912", "lat=", "SecretTok3n9", "abc.def.ghi"):
        assert secret not in text
