"""Issue 14 item 1: bulk stall import as a background job, through the real API (multipart upload,
job polling, report download), on the embedded thread pool."""
from __future__ import annotations

import io
import json

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from tests.conftest import error_code
from tests.jobs.test_jobs import manager_of, wait_for


def upload(client, market, headers, data: bytes, filename: str = "摊位.csv"):
    return client.post(f"/api/v1/markets/{market.id}/stall-imports", headers=headers,
                       data={"file": (io.BytesIO(data), filename)}, content_type="multipart/form-data")


def xlsx(rows) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def stalls_of(db, market) -> dict[str, str | None]:
    from app.markets.models import Stall

    db.session.expire_all()
    return dict(db.session.execute(select(Stall.number, Stall.note).where(Stall.market_id == market.id)).all())


def report_of(client, headers, done) -> dict:
    download = client.get(done["result"]["url"], headers=headers)
    assert download.status_code == 200 and download.mimetype == "application/json"
    return json.loads(download.data)


def uploads_in_store() -> list[str]:
    from app.core.objectstore import current_store

    return [key for key, _ in current_store().list("jobs/uploads/")]


def test_a_gbk_csv_is_imported_with_skips_and_reasons(thread_jobs, client, auth, db, make_market):
    market = make_market()
    manager = manager_of(auth, market)
    assert client.post(f"/api/v1/markets/{market.id}/stalls", json={"numbers": ["A-01"]},
                       headers=manager.headers).status_code == 201
    # As Excel in China saves a CSV: GBK, CRLF; a "*" in a template's header; a 编号 column
    # (the tenant's own code) beside 摊位号, which is the one taken.
    rows = [("A-01", "已有的"),          # row 2: the market has it -> skipped
            ("A-02", "东门第一间"),      # row 3: created with its note
            (" A-03 ", ""),              # row 4: blanks trimmed -> created
            None,                        # row 5: a blank row is not a row
            ("A-02", "又一次"),          # row 6: twice in the file -> rejected, names row 3
            ("", "只有备注"),            # row 7: no number
            ("X" * 33, ""),              # row 8: too long
            ("违禁词摊", ""),            # row 9: refused by the content check
            ("A-04", "这里有违禁词")]    # row 10: the note refused
    text = "序号,编号,*摊位号,备注\r\n" + "".join(
        ",,,\r\n" if row is None else f"{i},Z{i},{row[0]},{row[1]}\r\n" for i, row in enumerate(rows, start=1))
    submitted = upload(client, market, manager.headers, text.encode("gbk"))
    assert submitted.status_code == 202, submitted.get_json()
    job = submitted.get_json()
    assert job["kind"] == "stall_import" and job["progress"]["total"] == 8
    assert submitted.headers["Location"] == f"/api/v1/jobs/{job['id']}"

    done = wait_for(client, manager.headers, job["id"])
    assert done["status"] == "succeeded", done
    assert done["message"] == "新增 2 个摊位，已存在跳过 1 个，未导入 5 行"
    report = report_of(client, manager.headers, done)
    assert (report["rows"], report["created"], report["skipped"], report["rejected"]) == (8, 2, 1, 5)
    assert report["skipped_rows"] == [{"row": 2, "number": "A-01"}] and report["market"]["id"] == market.id
    assert {r["row"]: r["reason"] for r in report["rejected_rows"]} == {
        6: "与第 3 行的摊位号重复", 7: "摊位号为空", 8: "摊位号超过 32 个字符",
        9: "摊位号含有不宜公开的内容", 10: "备注含有不宜公开的内容"}
    assert stalls_of(db, market) == {"A-01": None, "A-02": "东门第一间", "A-03": None}
    # Audited like stalls added by hand, with the market's region.
    from app.core.audit import AuditEntry

    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "stall.create_bulk")
                               .order_by(AuditEntry.id.desc())).first()
    assert entry.actor_id == manager.user_id and entry.region_code == market.region_code
    assert entry.after == {"count": 2, "numbers": ["A-02", "A-03"]}


def test_an_xlsx_of_several_batches_and_a_rerun_adds_nothing_twice(thread_jobs, client, auth, db, make_market):
    market = make_market()
    manager = manager_of(auth, market)
    rows = [("序号", "摊位号", "备注")] + [(i, 1000 + i, None) for i in range(1, 1201)]  # numbers typed as numbers
    data = xlsx(rows)
    first = wait_for(client, manager.headers, upload(client, market, manager.headers, data, "摊位.xlsx").get_json()["id"])
    assert first["status"] == "succeeded" and first["progress"] == {"done": 1200, "total": 1200, "percent": 100}
    assert first["message"] == "新增 1200 个摊位，已存在跳过 0 个，未导入 0 行"
    numbers = stalls_of(db, market)
    assert len(numbers) == 1200 and "1001" in numbers and "2200" in numbers

    # The same file again (a manager unsure whether it went in): everything is skipped.
    again = wait_for(client, manager.headers, upload(client, market, manager.headers, data, "摊位.xlsx").get_json()["id"])
    assert again["message"] == "新增 0 个摊位，已存在跳过 1200 个，未导入 0 行"
    assert len(stalls_of(db, market)) == 1200


def test_a_failed_import_says_why_and_its_retry_completes_it(thread_jobs, client, auth, db, make_market, wechat_sim):
    market = make_market()
    manager = manager_of(auth, market)
    wechat_sim.sim_state.add_fault("wxa/msg_sec_check", http_status=502, times=1)
    job = upload(client, market, manager.headers, "摊位号\nB-1\nB-2\n".encode()).get_json()
    failed = wait_for(client, manager.headers, job["id"])
    assert failed["status"] == "failed" and failed["status_label"] == "失败（可重试）"
    assert failed["error"] == {"code": "WECHAT_UNAVAILABLE", "message": "微信服务暂时不可用，请稍后重试"}
    assert stalls_of(db, market) == {}

    assert client.post(f"/api/v1/jobs/{job['id']}/retry", headers=manager.headers).status_code == 202
    done = wait_for(client, manager.headers, job["id"])
    assert done["status"] == "succeeded" and done["attempts"] == 2
    assert set(stalls_of(db, market)) == {"B-1", "B-2"}


def test_an_import_follows_the_rights_of_adding_stalls(thread_jobs, client, auth, db, make_market):
    market = make_market()
    other = make_market(name="长洲区综合市场", region_code="450405")
    file = "摊位号\nC-1\n".encode()
    # Another market's manager, and a regulator of another region: as if the market did not exist.
    for who in (manager_of(auth, other, "other-manager"),
                auth.login("reg-hunan", role="regulator", scope="region:430000")):
        refused = upload(client, market, who.headers, file)
        assert refused.status_code == 404 and error_code(refused) == "MARKET_NOT_FOUND"
    rider = auth.login("rider", role="rider")
    assert error_code(upload(client, market, rider.headers, file)) == "FORBIDDEN"
    assert client.post(f"/api/v1/markets/{market.id}/stall-imports",
                       data={"file": (io.BytesIO(file), "a.csv")}).status_code == 401
    # A regulator of the region may, as they may add stalls by hand.
    regulator = auth.login("reg-wuzhou", role="regulator", scope="region:450400")
    job = upload(client, market, regulator.headers, file).get_json()
    assert wait_for(client, regulator.headers, job["id"])["status"] == "succeeded"
    # The job is its submitter's only.
    assert error_code(client.get(f"/api/v1/jobs/{job['id']}", headers=manager_of(auth, market).headers)) \
        == "JOB_NOT_FOUND"
    assert stalls_of(db, market) == {"C-1": None} and stalls_of(db, other) == {}


@pytest.mark.parametrize(("data", "filename", "status", "code"), [
    (b"", "empty.csv", 422, "JOB_UPLOAD_EMPTY"),
    ("摊位号,备注\n".encode(), "header-only.csv", 422, "STALL_IMPORT_EMPTY"),
    ("名称,备注\n东门水果,\n".encode(), "no-number.csv", 422, "STALL_IMPORT_NO_NUMBER_COLUMN"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "photo.png", 422, "STALL_IMPORT_BAD_FILE"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "old.xls", 422, "STALL_IMPORT_BAD_FILE"),
    (b"PK\x03\x04not really a zip", "broken.xlsx", 422, "STALL_IMPORT_BAD_FILE"),
    ("摊位号\n".encode() + b"".join(f"D-{i}\n".encode() for i in range(20001)), "big.csv", 422,
     "STALL_IMPORT_TOO_MANY_ROWS"),
    (b"x" * (2 * 1024 * 1024 + 1), "huge.csv", 413, "JOB_UPLOAD_TOO_LARGE"),
], ids=["empty", "header-only", "no-number-column", "not-a-table", "old-xls", "broken-xlsx", "too-many-rows",
        "too-large"])
def test_a_bad_file_is_refused_at_submit_and_nothing_is_queued(thread_jobs, client, auth, db, make_market,
                                                               data, filename, status, code):
    from app.jobs.models import Job

    market = make_market()
    manager = manager_of(auth, market)
    kept = set(uploads_in_store())  # the store is the test session's: other tests' files stay
    refused = upload(client, market, manager.headers, data, filename)
    assert refused.status_code == status and error_code(refused) == code, refused.get_json()
    assert refused.get_json()["error"]["message"]  # in Chinese, from the code's registration
    assert db.session.scalar(select(func.count()).select_from(Job)) == 0
    assert set(uploads_in_store()) == kept
    if code == "STALL_IMPORT_NO_NUMBER_COLUMN":
        assert "摊位号" in refused.get_json()["error"]["message"]
    if filename == "old.xls":
        assert ".xlsx" in refused.get_json()["error"]["details"]["reason"]
