"""Issue 14 item 1, upkeep: finished jobs are purged with their files, jobs have their own status
labels, the thread pool starts with each gunicorn worker, and `flask doctor` checks the RQ
workers."""
from __future__ import annotations

import io
import os
import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.jobs.test_jobs import manager_of, wait_for


def files_of(public_id: str, input_key: str) -> list[str]:
    from app.core.objectstore import current_store

    return [key for key, _ in current_store().list("jobs/") if public_id in key or key == input_key]


def test_finished_jobs_are_purged_with_their_files_after_the_grace(thread_jobs, client, auth, app, db, clock,
                                                                   make_market):
    from app.jobs.models import Job
    from app.jobs.sweep import PURGE_GRACE, sweep

    market = make_market()
    manager = manager_of(auth, market)
    job = client.post(f"/api/v1/markets/{market.id}/stall-imports", headers=manager.headers,
                      data={"file": (io.BytesIO("摊位号\nE-1\n".encode()), "a.csv")}).get_json()
    assert wait_for(client, manager.headers, job["id"])["status"] == "succeeded"
    row = db.session.scalar(select(Job).where(Job.public_id == job["id"]))
    input_key = row.params["input_key"]
    assert len(files_of(job["id"], input_key)) == 2  # the upload and the report

    ttl = timedelta(hours=app.config["JOBS_RESULT_TTL_HOURS"])
    clock.advance(ttl + timedelta(seconds=1))
    counts = sweep(app)
    assert (counts["expired"], counts["purged"]) == (1, 0)  # the report goes; the row stays to say so
    assert files_of(job["id"], input_key) == [input_key]
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=manager.headers).get_json()["status_label"] == "结果已过期"

    clock.advance(PURGE_GRACE)
    assert sweep(app)["purged"] == 1
    assert files_of(job["id"], input_key) == []
    db.session.expire_all()
    assert db.session.scalar(select(Job).where(Job.public_id == job["id"])) is None
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=manager.headers).status_code == 404
    assert sweep(app)["purged"] == 0


def test_a_recent_failed_job_is_kept_and_an_old_one_purged(app, db, auth, clock):
    from app.core.time import utcnow
    from app.jobs.models import Job
    from app.jobs.sweep import PURGE_GRACE, sweep

    owner = auth.login("owner")
    now = utcnow()
    ttl = timedelta(hours=app.config["JOBS_RESULT_TTL_HOURS"])
    for public_id, finished in (("RecentFailedJob1", now - ttl), ("OldFailedJob0001", now - ttl - PURGE_GRACE - timedelta(minutes=1))):
        db.session.add(Job(public_id=public_id, kind="sticker_sheet", owner_id=owner.user_id, params={},
                           status="failed", created_at=finished, finished_at=finished, error_code="JOB_FAILED"))
    db.session.add(Job(public_id="StillRunningJob1", kind="sticker_sheet", owner_id=owner.user_id, params={},
                       status="queued", created_at=now - ttl - PURGE_GRACE * 2, heartbeat_at=now))
    db.session.commit()
    assert sweep(app)["purged"] == 1
    assert set(db.session.scalars(select(Job.public_id))) == {"RecentFailedJob1", "StillRunningJob1"}


def test_jobs_say_failed_in_their_own_words(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    job_status = spec["components"]["schemas"]["Job"]["properties"]["status"]
    assert job_status["x-enum-labels"]["failed"] == "失败（可重试）"
    # The shared table keeps a notification's word for the same code.
    from miniprogram_api.labels import ENUM_LABELS

    assert ENUM_LABELS["failed"] == "发送失败"
    assert client.get("/api/v1/jobs/NoSuchJob0000001").status_code == 401  # (the describe() label: test_stall_import)


def test_the_thread_pool_starts_with_each_gunicorn_worker(tmp_path_factory):
    """No request needed: a worker of the shipped config runs queued jobs from its start."""
    from tests.deploy.county import api_host_on_sqlite

    with api_host_on_sqlite(tmp_path_factory.mktemp("jobs-gunicorn"), workers=2) as (base, process):
        deadline = time.monotonic() + 30
        while len(set(re.findall(r"后台任务在本进程（pid (\d+)）", process.text()))) < 2:
            assert time.monotonic() < deadline, process.text()[-3000:]
            time.sleep(0.2)


def test_the_post_worker_init_hook_starts_no_pool_with_rq(app):
    """With Redis the RQ workers run the jobs: the hook starts nothing in the API worker."""
    import importlib.util
    from pathlib import Path

    from app.jobs import embedded

    spec = importlib.util.spec_from_file_location(
        "gunicorn_conf", Path(__file__).resolve().parents[2] / "deploy" / "gunicorn.conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)

    class Worker:
        wsgi = app
        log = __import__("logging").getLogger("test")

    before = app.config["JOBS_BACKEND"]
    app.config["JOBS_BACKEND"] = "rq"
    try:
        embedded.stop(app)
        conf.post_worker_init(Worker())
        assert embedded.dispatcher(app, start=False) is None
        app.config["JOBS_BACKEND"] = "thread"
        conf.post_worker_init(Worker())
        assert embedded.dispatcher(app, start=False) is not None
    finally:
        conf.worker_exit(None, Worker())
        assert embedded.dispatcher(app, start=False) is None
        app.config["JOBS_BACKEND"] = before


def test_doctor_says_where_jobs_run(app):
    from app.doctor import OK, examine

    before = app.config["JOBS_BACKEND"]
    app.config["JOBS_BACKEND"] = "thread"
    try:
        finding = {f.check: f for f in examine(app)}["后台任务"]
    finally:
        app.config["JOBS_BACKEND"] = before
    assert finding.level == OK and "线程" in finding.message


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="REDIS_URL 未设置：跳过 RQ 任务进程检查")
def test_doctor_warns_when_no_rq_worker_serves_the_queue(app):
    from rq import Worker

    from app.doctor import OK, WARN, examine
    from app.jobs.rq_backend import connection, queue

    before = app.config["JOBS_BACKEND"], app.config["JOBS_QUEUE"]
    app.config["JOBS_BACKEND"], app.config["JOBS_QUEUE"] = "rq", f"xgz-doctor-{os.getpid()}"
    try:
        finding = {f.check: f for f in examine(app)}["后台任务"]
        assert finding.level == WARN and "没有任务进程" in finding.message and "xgz-doctor-" in finding.message
        worker = Worker([queue(app)], connection=connection(app), name=f"doctor-test-{os.getpid()}")
        worker.register_birth()
        try:
            finding = {f.check: f for f in examine(app)}["后台任务"]
            assert finding.level == OK and "1 个任务进程" in finding.message
        finally:
            worker.register_death()
    finally:
        app.config["JOBS_BACKEND"], app.config["JOBS_QUEUE"] = before


def test_the_job_endpoints_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path, multipart in (("/api/v1/markets/{market_id}/stall-imports", True), ("/api/v1/regions/imports", True),
                            ("/api/v1/markets/{market_id}/pledge-ledger-jobs", False),
                            ("/api/v1/markets/{market_id}/qr-sheet-jobs", False)):
        operation = paths[path]["post"]
        assert operation["summary"] and "202" in operation["responses"], path
        body = (operation.get("requestBody") or {}).get("content", {})
        assert ("multipart/form-data" in body) == multipart, path
        if multipart:
            assert body["multipart/form-data"]["schema"]
    assert "PLEDGE_LEDGER_USE_JOB" in str(paths["/api/v1/markets/{market_id}/pledges.xlsx"]["get"])
