"""Issue 14 item 1: the pledge ledger of a big market and the region table as background jobs
(the same workbook as the direct download; the same reader and upsert as `flask regions import`)."""
from __future__ import annotations

import io
import json
from pathlib import Path

from sqlalchemy import func, select

from tests.conftest import error_code, xlsx_table
from tests.jobs.test_jobs import manager_of, wait_for
from tests.pledges.conftest import world  # noqa: F401  (fixture: a market, a merchant, a template)


def broken_store(app, tmp_path: Path) -> None:
    """Point the app at a store whose jobs/ is a plain file: every job file write fails, as on
    a full or unmounted disk."""
    root = tmp_path / "broken-store"
    root.mkdir()
    (root / "jobs").write_text("not a directory")
    app.config["UPLOAD_DIR"] = str(root)


def test_the_ledger_job_makes_the_same_workbook_as_the_direct_export(thread_jobs, world, client):
    for _ in range(2):
        pledge = world.sign().get_json()
        world.review(pledge["id"], "approve")
        world.revoke(pledge["id"])
    direct = client.get(f"/api/v1/markets/{world.market.id}/pledges.xlsx", headers=world.manager.headers)
    assert direct.status_code == 200
    submitted = client.post(f"/api/v1/markets/{world.market.id}/pledge-ledger-jobs", headers=world.manager.headers)
    assert submitted.status_code == 202 and submitted.get_json()["kind"] == "pledge_ledger"
    done = wait_for(client, world.manager.headers, submitted.get_json()["id"])
    assert done["status"] == "succeeded" and done["result"]["filename"].startswith("诚信经营承诺台账-梧州市新兴农贸市场-")
    made = client.get(done["result"]["url"], headers=world.manager.headers)
    assert made.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    heading, header, rows, _ = xlsx_table(made.data)
    direct_heading, direct_header, direct_rows, _ = xlsx_table(direct.data)
    assert (header, rows) == (direct_header, direct_rows) and len(rows) == 2
    assert heading[0] == direct_heading[0] == "梧州市新兴农贸市场 诚信经营承诺台账"
    # A status filter is kept (the query string of the direct export).
    filtered = client.post(f"/api/v1/markets/{world.market.id}/pledge-ledger-jobs?status=approved",
                           headers=world.manager.headers).get_json()
    done = wait_for(client, world.manager.headers, filtered["id"])
    direct = client.get(f"/api/v1/markets/{world.market.id}/pledges.xlsx?status=approved",
                        headers=world.manager.headers)
    made = xlsx_table(client.get(done["result"]["url"], headers=world.manager.headers).data)
    assert made[2] == xlsx_table(direct.data)[2] and "状态：全部" not in made[0][1]


def test_the_direct_ledger_points_a_big_market_at_the_job(world, client, auth, monkeypatch):
    from app.pledges import jobs

    world.sign()
    world.sign(merchant_id=world.merchant.id, headers={})  # the second is refused (one pending): still one
    monkeypatch.setattr(jobs, "DIRECT_LEDGER_MAX_PLEDGES", 0)  # a market over the limit, without 2,001 rows
    refused = client.get(f"/api/v1/markets/{world.market.id}/pledges.xlsx", headers=world.manager.headers)
    assert refused.status_code == 409 and error_code(refused) == "PLEDGE_LEDGER_USE_JOB"
    assert "后台生成" in refused.get_json()["error"]["message"]
    assert refused.get_json()["error"]["details"] == {
        "pledges": 1, "limit": 0, "job_endpoint": f"/api/v1/markets/{world.market.id}/pledge-ledger-jobs"}
    # The access check comes first: an outsider learns nothing of the market's size.
    outsider = auth.login("outsider", role="market_manager", scope=f"market:{world.other_market.id}")
    hidden = client.get(f"/api/v1/markets/{world.market.id}/pledges.xlsx", headers=outsider.headers)
    assert hidden.status_code == 404 and error_code(hidden) == "MARKET_NOT_FOUND"


def test_the_ledger_job_follows_the_export_s_rights(thread_jobs, world, client, auth):
    other_manager = auth.login("outsider", role="market_manager", scope=f"market:{world.other_market.id}")
    refused = client.post(f"/api/v1/markets/{world.market.id}/pledge-ledger-jobs", headers=other_manager.headers)
    assert refused.status_code == 404 and error_code(refused) == "MARKET_NOT_FOUND"
    merchant = client.post(f"/api/v1/markets/{world.market.id}/pledge-ledger-jobs", headers=world.owner.headers)
    assert merchant.status_code == 403 and error_code(merchant) == "FORBIDDEN"
    regulator = auth.login("reg-wuzhou", role="regulator", scope="region:450400")
    job = client.post(f"/api/v1/markets/{world.market.id}/pledge-ledger-jobs", headers=regulator.headers)
    assert wait_for(client, regulator.headers, job.get_json()["id"])["status"] == "succeeded"


def test_a_ledger_job_that_cannot_store_its_file_says_why_and_is_retried(held_jobs, world, client, app, tmp_path):
    job = client.post(f"/api/v1/markets/{world.market.id}/pledge-ledger-jobs", headers=world.manager.headers).get_json()
    working = app.config["UPLOAD_DIR"]
    broken_store(app, tmp_path)
    try:
        assert held_jobs.run(job["id"]) == "failed"
    finally:
        app.config["UPLOAD_DIR"] = working
    failed = client.get(f"/api/v1/jobs/{job['id']}", headers=world.manager.headers).get_json()
    assert failed["status"] == "failed" and failed["error"]["code"] == "STORAGE_UNAVAILABLE"
    assert failed["error"]["message"] == "照片存储服务暂时不可用，请稍后重试"
    retried = client.post(f"/api/v1/jobs/{job['id']}/retry", headers=world.manager.headers)
    assert retried.status_code == 202 and retried.get_json()["status"] == "queued"
    assert held_jobs.run(job["id"]) == "succeeded"
    done = client.get(f"/api/v1/jobs/{job['id']}", headers=world.manager.headers).get_json()
    assert done["attempts"] == 2 and client.get(done["result"]["url"], headers=world.manager.headers).status_code == 200


# -- regions ---------------------------------------------------------------------------------------
GBT2260 = ("# 节选\ncode,name\n450000,广西壮族自治区\n450100,南宁市\n450102,兴宁区\n450103,青秀区\n"
           "450400,梧州市\n450403,万秀区\n")


def import_regions(client, headers, data: bytes, filename: str = "regions.csv"):
    return client.post("/api/v1/regions/imports", headers=headers, data={"file": (io.BytesIO(data), filename)},
                       content_type="multipart/form-data")


def region_names(db) -> dict[str, str]:
    from app.core.regions import Region

    db.session.expire_all()
    return dict(db.session.execute(select(Region.code, Region.name)).all())


def test_an_admin_imports_regions_and_a_rerun_adds_nothing(thread_jobs, client, auth, db, regions):
    admin = auth.login("admin", role="admin")
    before = region_names(db)  # the demo regions of the fixture: 450000, 450400, 450403 among them
    submitted = import_regions(client, admin.headers, GBT2260.encode("gbk"))
    assert submitted.status_code == 202 and submitted.get_json()["progress"]["total"] == 6
    done = wait_for(client, admin.headers, submitted.get_json()["id"])
    added = len(set(region_names(db)) - set(before))
    assert done["status"] == "succeeded" and added == 3  # 南宁市, 兴宁区, 青秀区
    assert done["message"] == "读取 6 条，新增 3 条，已有的 3 条未改动"
    report = json.loads(client.get(done["result"]["url"], headers=admin.headers).data)
    assert report == {"read": 6, "added": 3, "unchanged": 3}
    from app.core.regions import Region

    assert db.session.get(Region, "450102").parent_code == "450100"
    again = wait_for(client, admin.headers, import_regions(client, admin.headers, GBT2260.encode()).get_json()["id"])
    assert again["message"] == "读取 6 条，新增 0 条，已有的 6 条未改动"


def test_a_bad_region_file_is_refused_at_submit(thread_jobs, client, auth, db):
    from app.jobs.models import Job

    admin = auth.login("admin", role="admin")
    for data, reason in ((b"code,name\n4501,short\n", "第 2 行"), (b"\x89PNG\r\n\x00\x00", "不是文本文件"),
                         (b"code,name\n# nothing\n", "没有行政区划")):
        refused = import_regions(client, admin.headers, data)
        assert refused.status_code == 422 and error_code(refused) == "REGION_FILE_INVALID", refused.get_json()
        assert reason in refused.get_json()["error"]["details"].get("reason", ""), refused.get_json()
    assert error_code(import_regions(client, admin.headers, b"1" * (2 * 1024 * 1024 + 1))) == "JOB_UPLOAD_TOO_LARGE"
    assert db.session.scalar(select(func.count()).select_from(Job)) == 0


def test_only_an_admin_imports_regions(thread_jobs, client, auth, regions):
    for who in (auth.login("regulator", role="regulator", scope="region:450000"), auth.login("plain")):
        refused = import_regions(client, who.headers, GBT2260.encode())
        assert refused.status_code == 403 and error_code(refused) == "FORBIDDEN"
    assert import_regions(client, {}, GBT2260.encode()).status_code == 401


def test_a_region_job_that_cannot_read_its_file_says_why_and_is_retried(held_jobs, client, auth, app, db, tmp_path):
    admin = auth.login("admin", role="admin")
    job = import_regions(client, admin.headers, GBT2260.encode()).get_json()
    working = app.config["UPLOAD_DIR"]
    broken_store(app, tmp_path)
    try:
        assert held_jobs.run(job["id"]) == "failed"
    finally:
        app.config["UPLOAD_DIR"] = working
    failed = client.get(f"/api/v1/jobs/{job['id']}", headers=admin.headers).get_json()
    assert failed["error"]["code"] == "STORAGE_UNAVAILABLE" and "450102" not in region_names(db)
    assert client.post(f"/api/v1/jobs/{job['id']}/retry", headers=admin.headers).status_code == 202
    assert held_jobs.run(job["id"]) == "succeeded"
    assert region_names(db)["450102"] == "兴宁区"
