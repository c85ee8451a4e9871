"""Issue 15 item 6, 导出 and 审计日志: the coverage table, the pledge ledger (directly, or as a
background job with its progress bar and download) and the attendance sheet as xlsx, and the
audit log filtered by target, actor and date; a regulator of one county sees nothing of the
next one's, CSRF is required on every POST. The job path and the pages in real Chromium, with
screenshots at 1280×800 and 390×844."""
from __future__ import annotations

import io
import re
import time
from datetime import timedelta

import pytest
from openpyxl import load_workbook

from tests.console.conftest import PHONE, ConsoleActions
from tests.console.test_dashboard import CHANGZHOU_MARKET, WANXIU_MARKET, world  # noqa: F401  (fixture)


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _html(response) -> str:
    return response.get_data(as_text=True)


def _cells(data: bytes) -> str:
    """Every cell of every sheet as one text (the workbook must open)."""
    book = load_workbook(io.BytesIO(data), read_only=True)
    return "\n".join(str(value) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)
                     for value in row if value is not None)


def _job_finished(client, public_id: str, seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        job = client.get(f"/console/jobs/{public_id}", headers={"Accept": "application/json"}).get_json()
        if job["status"] in ("succeeded", "failed"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


@pytest.fixture
def activity(world, db):
    """A 主题党日 of the 万秀 market's branch last week, with a verified member."""
    from app.core.time import to_local, utcnow
    from tests.orgs.factories import add_member, create_activity, create_org

    org = create_org(name="东中市场党支部", region_code="450403")
    add_member("member-1", org)
    starts = to_local(utcnow() - timedelta(days=7)).strftime("%Y-%m-%d %H:%M")
    return create_activity(org, starts=starts, title="东中市场主题党日")


# -- exports ------------------------------------------------------------------------------------------
def test_county_regulator_exports_only_their_county(client, console, world):
    console.login("reg-wanxiu", role="regulator", scope="region:450403")
    page = _html(client.get("/console/exports"))
    assert 'value="450403"' in page and 'value="450405"' not in page and 'value="450400"' not in page
    assert WANXIU_MARKET in page and CHANGZHOU_MARKET not in page
    csrf = console.csrf("/console/exports")

    table = client.post("/console/exports/coverage.xlsx", data={"csrf_token": csrf, "region": "450403"})
    assert table.status_code == 200 and table.mimetype == XLSX
    assert "attachment" in table.headers["Content-Disposition"]
    cells = _cells(table.data)
    assert WANXIU_MARKET in cells and "长洲" not in cells

    for region in ("450405", "450400"):
        refused = client.post("/console/exports/coverage.xlsx", data={"csrf_token": csrf, "region": region})
        assert refused.status_code == 403 and refused.mimetype == "text/html"
        html = _html(refused)
        assert 'data-testid="refusal-coverage"' in html and "该对象不在您的管辖范围内" in html
        assert CHANGZHOU_MARKET not in html

    other = client.post("/console/exports/pledges.xlsx", data={"csrf_token": csrf, "market_id": world.changzhou.id})
    assert other.status_code == 404 and "市场不存在" in _html(other)  # as the API: an outsider learns nothing
    queued = client.post("/console/exports/pledge-ledger-jobs", data={"csrf_token": csrf, "market_id": world.changzhou.id},
                         headers={"X-CSRF-Token": csrf, "Accept": "application/json"})
    assert queued.status_code == 404 and queued.get_json()["error"]["code"] == "MARKET_NOT_FOUND"
    job = client.post("/console/exports/coverage-jobs", data={"region": "450405"},
                      headers={"X-CSRF-Token": csrf, "Accept": "application/json"})
    assert job.status_code == 403 and job.get_json()["error"]["code"] == "OUT_OF_SCOPE"


def test_every_export_post_needs_the_csrf_token(client, console, world):
    console.login("reg-wanxiu", role="regulator", scope="region:450403")
    for path, data in (("/console/exports/coverage.xlsx", {"region": "450403"}),
                       ("/console/exports/coverage-jobs", {"region": "450403"}),
                       ("/console/exports/pledges.xlsx", {"market_id": world.wanxiu.id}),
                       ("/console/exports/pledge-ledger-jobs", {"market_id": world.wanxiu.id}),
                       ("/console/exports/attendance.xlsx", {"activity_id": "1"})):
        refused = client.post(path, data=data)
        assert refused.status_code == 403 and "安全校验未通过" in _html(refused), path
        fetched = client.post(path, data=data, headers={"X-CSRF-Token": "forged", "Accept": "application/json"})
        assert fetched.status_code == 403 and fetched.get_json()["error"]["code"] == "CONSOLE_CSRF_FAILED"
    from app.jobs.models import Job
    from app.extensions import db

    assert db.session.query(Job).count() == 0


def test_pledge_ledger_direct_and_as_a_job(thread_jobs, client, console, world, app, auth):
    console.login("reg-wanxiu", role="regulator", scope="region:450403")
    csrf = console.csrf("/console/exports")
    direct = client.post("/console/exports/pledges.xlsx", data={"csrf_token": csrf, "market_id": world.wanxiu.id})
    assert direct.status_code == 200 and direct.mimetype == XLSX
    assert "诚信经营承诺台账" in _cells(direct.data) and "李明" in _cells(direct.data)

    # Without script the form posts and the browser lands on the job's page.
    sent = client.post("/console/exports/pledge-ledger-jobs", data={"csrf_token": csrf, "market_id": world.wanxiu.id,
                                                                   "status": "approved"})
    assert sent.status_code == 303 and sent.headers["Location"].startswith("/console/jobs/")
    public_id = sent.headers["Location"].rsplit("/", 1)[1]
    job = _job_finished(client, public_id)
    assert job["status"] == "succeeded" and job["result"]["url"] == f"/console/jobs/{public_id}/result"
    page = _html(client.get(f"/console/jobs/{public_id}"))
    assert "诚信经营承诺台账" in page and 'data-testid="job"' in page and "下载「" in page
    result = client.get(job["result"]["url"])
    assert result.status_code == 200 and "李明" in _cells(result.data)
    # Only a failed job is run again; the retry is a POST like any other (CSRF).
    assert client.post(f"/console/jobs/{public_id}/retry").status_code == 403
    again = client.post(f"/console/jobs/{public_id}/retry", headers={"X-CSRF-Token": csrf, "Accept": "application/json"})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "JOB_NOT_RETRYABLE"

    # Someone else's job is a missing one.
    stranger = ConsoleActions(app.test_client(), auth)
    stranger.login("reg-other", role="regulator", scope="region:450403")
    assert stranger.client.get(f"/console/jobs/{public_id}", headers={"Accept": "application/json"}).status_code == 404
    assert stranger.client.get(f"/console/jobs/{public_id}/result").status_code == 404


def test_a_large_region_is_sent_to_the_job(thread_jobs, client, console, world, monkeypatch):
    from app.stats import jobs as stats_jobs

    monkeypatch.setattr(stats_jobs, "DIRECT_EXPORT_MAX_MARKETS", 1)  # the city has two markets
    console.login("reg-city", role="regulator", scope="region:450400")
    csrf = console.csrf("/console/exports")
    refused = client.post("/console/exports/coverage.xlsx", data={"csrf_token": csrf, "region": "450400"})
    assert refused.status_code == 409 and "请使用“后台导出”" in _html(refused)
    queued = client.post("/console/exports/coverage-jobs", data={"region": "450400"},
                         headers={"X-CSRF-Token": csrf, "Accept": "application/json"})
    assert queued.status_code == 202 and queued.headers["Location"] == queued.get_json()["url"]
    job = _job_finished(client, queued.get_json()["id"])
    assert job["status"] == "succeeded" and job["progress"]["percent"] == 100
    cells = _cells(client.get(job["result"]["url"]).data)
    assert WANXIU_MARKET in cells and CHANGZHOU_MARKET in cells and "醴陵" not in cells


def test_attendance_sheet_for_the_organiser_only(client, console, app, auth, activity):
    console.login("reg-wanxiu", role="regulator", scope="region:450403")
    page = _html(client.get("/console/exports"))
    assert "东中市场主题党日" in page
    csrf = console.csrf("/console/exports")
    sheet = client.post("/console/exports/attendance.xlsx", data={"csrf_token": csrf, "activity_id": activity.id})
    assert sheet.status_code == 200 and "东中市场主题党日（签到表）" in _cells(sheet.data)

    neighbour = ConsoleActions(app.test_client(), auth)
    neighbour.login("reg-changzhou", role="regulator", scope="region:450405")
    assert "东中市场主题党日" not in _html(neighbour.client.get("/console/exports"))
    refused = neighbour.client.post("/console/exports/attendance.xlsx",
                                    data={"csrf_token": neighbour.csrf("/console/exports"), "activity_id": activity.id})
    assert refused.status_code == 404 and "活动不存在" in _html(refused)


def test_a_manager_exports_their_ledger_but_no_coverage_table(client, console, world):
    console.login("manager-1", role=None)
    page = _html(client.get("/console/exports"))
    assert "诚信经营承诺台账" in page and WANXIU_MARKET in page and "覆盖情况统计表" not in page
    csrf = console.csrf("/console/exports")
    refused = client.post("/console/exports/coverage.xlsx", data={"csrf_token": csrf, "region": "450403"})
    assert refused.status_code == 403 and "您没有权限" in _html(refused)


# -- audit ----------------------------------------------------------------------------------------------
def _entries(html: str) -> list[str]:
    return re.findall(r'<tr data-entry="(\d+)">', html)


def test_audit_log_is_scoped_filtered_and_masks_people(client, console, app, auth, world, db):
    from app.core.time import local_today
    from app.identity.models import User

    manager = db.session.get(User, world.manager.user_id)
    manager.real_name, manager.phone = "张管理", "13800138000"
    db.session.commit()

    console.login("reg-wanxiu", role="regulator", scope="region:450403")
    everything = _html(client.get("/console/audit"))
    rows = _entries(everything)
    assert rows and "长洲区的改名" not in everything and "长洲" not in everything
    assert "pledge.approve" in everything or "pledge.review" in everything
    assert "张管理" in everything and "138****8000" in everything and "13800138000" not in everything

    only_pledges = _html(client.get("/console/audit", query_string={"target_type": "pledge"}))
    assert _entries(only_pledges) and all(
        kind == "pledge" for kind in re.findall(r'target_type=(\w+)&amp;target_id=', only_pledges))
    assert _entries(_html(client.get("/console/audit", query_string={"target_type": "market",
                                                                     "target_id": world.changzhou.id}))) == []

    by_actor = _html(client.get("/console/audit", query_string={"actor": manager.id}))
    assert _entries(by_actor) and set(re.findall(r'actor=(\d+)"', by_actor)) == {str(manager.id)}
    tomorrow = local_today() + timedelta(days=1)
    assert _entries(_html(client.get("/console/audit", query_string={"from": tomorrow.isoformat()}))) == []
    assert _entries(_html(client.get("/console/audit", query_string={"to": tomorrow.isoformat()}))) == rows

    bad = client.get("/console/audit", query_string={"from": "2026-13-40", "actor": "abc", "target_id": "42"})
    assert bad.status_code == 422
    html = _html(bad)
    assert 'id="error-from"' in html and 'id="error-actor"' in html
    assert 'value="2026-13-40"' in html and 'value="42"' in html  # what was typed is kept
    for typed in ("²", "99999999999999999999", "-3"):  # not a user id a column holds: said, not a 500
        odd = client.get("/console/audit", query_string={"actor": typed})
        assert odd.status_code == 422 and 'id="error-actor"' in _html(odd), typed
    for day in ("0001-01-01", "9999-12-31"):
        odd = client.get("/console/audit", query_string={"from": day, "to": day})
        assert odd.status_code == 422 and 'id="error-from"' in _html(odd) and 'id="error-to"' in _html(odd), day
    backwards = client.get("/console/audit", query_string={"from": "2026-06-02", "to": "2026-06-01"})
    assert backwards.status_code == 422 and "结束日期不能早于开始日期" in _html(backwards)

    city = ConsoleActions(app.test_client(), auth)
    city.login("reg-city", role="regulator", scope="region:450400")
    market_rows = _html(city.client.get("/console/audit", query_string={"target_type": "market",
                                                                          "target_id": world.changzhou.id}))
    assert _entries(market_rows) and "长洲区的改名" in market_rows and "长洲旧名" in market_rows


def test_audit_log_is_for_regulators_and_admins(client, console, world):
    console.login("manager-1", role=None)
    refused = client.get("/console/audit")
    assert refused.status_code == 403 and "您没有权限进行此操作" in _html(refused)


def test_audit_log_pages(client, console, world, db):
    from app.core import audit
    from app.console.pages.audit import PER_PAGE

    for number in range(PER_PAGE + 5):
        audit.record("stall.note", "stall", str(number), region_code="450403", reason=f"分页{number}")
    db.session.commit()
    console.login("reg-wanxiu", role="regulator", scope="region:450403")
    first = _html(client.get("/console/audit", query_string={"action": "stall.note"}))
    assert len(_entries(first)) == PER_PAGE and "第 1 / 2 页" in first
    assert 'href="/console/audit?page=2&amp;action=stall.note"' in first or "page=2" in first
    second = _html(client.get("/console/audit", query_string={"action": "stall.note", "page": 2}))
    assert len(_entries(second)) == 5


# -- in the browser ---------------------------------------------------------------------------------------
def test_coverage_job_shows_progress_and_downloads_in_the_browser(thread_jobs, live_server, page, new_page,
                                                                  scan_login, shot, world):
    scan_login(page, "reg-city", role="regulator", scope="region:450400", path="/console/exports")
    shot(page, "exports-1280x800")
    page.get_by_role("button", name="后台生成").first.click()
    job = page.locator("#coverage-job [data-testid=job]")
    job.wait_for()
    assert job.locator("progress").count() == 1 and "覆盖情况统计表" in job.inner_text()
    link = job.locator("a.job-download")
    link.wait_for(state="visible")
    assert job.locator("progress").evaluate("bar => bar.value") == 100
    assert "已完成" in job.inner_text()
    shot(page, "exports-job-1280x800")
    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename.endswith(".xlsx")
    cells = _cells(open(download.path(), "rb").read())
    assert WANXIU_MARKET in cells and CHANGZHOU_MARKET in cells

    with page.expect_download() as direct_info:  # the direct download of the same table
        page.get_by_role("button", name="下载统计表").click()
    assert "长洲" in _cells(open(direct_info.value.path(), "rb").read())

    phone = new_page(PHONE)
    scan_login(phone, "reg-city", role=None, path="/console/exports")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(phone, "exports-390x844")


def test_audit_filters_in_the_browser(live_server, page, new_page, scan_login, shot, world):
    scan_login(page, "reg-city", role="regulator", scope="region:450400", path="/console/audit")
    table = page.locator("[data-testid=audit-table]")
    assert "长洲区的改名" in table.inner_text()
    page.get_by_label("对象类型").select_option("market")
    page.get_by_role("button", name="筛选").click()
    page.wait_for_url(re.compile(r"target_type=market"))
    assert page.locator("[data-entry]").count() >= 1
    objects = page.locator("[data-entry] td:nth-child(4)").all_inner_texts()
    assert all(text.startswith("市场 ") for text in objects), objects
    assert "长洲区的改名" in table.inner_text()
    shot(page, "audit-1280x800")
    page.get_by_role("link", name="清除条件").click()
    page.get_by_label("开始日期").fill("2099-01-01")
    page.get_by_role("button", name="筛选").click()
    page.wait_for_url(re.compile(r"from=2099-01-01"))
    assert "没有符合条件的记录" in page.locator("main").inner_text()
    assert page.get_by_label("开始日期").input_value() == "2099-01-01"

    phone = new_page(PHONE)
    scan_login(phone, "reg-city", role=None, path="/console/audit")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(phone, "audit-390x844")

    neighbour = new_page()
    scan_login(neighbour, "reg-wanxiu", role="regulator", scope="region:450403", path="/console/audit")
    assert "长洲" not in neighbour.locator("main").inner_text()
