"""R14, second wave: the routes added since the first (rider reports, 示范 and /m/<token>,
background jobs with uploaded files, the console's login and pages, the overview's paging)
attacked from outside; each case is one a reviewer found answering 500 (or accepting what it
should refuse) before the mechanism behind it was fixed.

Classes here, beside those of test_hostile_input.py:
- numbers typed in other scripts ("²", "①", "١") or longer than int() reads, wherever a URL or
  form number is read by hand (app.core.ids.typed_int / page_number);
- a multipart text part under a file field's name (miniprogram_api.common: every multipart
  operation of the document);
- a fraction where the document says integer (miniprogram_api.common.Int)."""
from __future__ import annotations

import io
import re

import pytest

from tests.conftest import error_code

OTHER_DIGITS = ("²", "①", "١", "٣", "１", "9" * 5000, "99999999999", "-1", "0", " 1", "1e3", "")


def test_typed_int_reads_ascii_digits_within_an_integer_column_only():
    from app.core.ids import page_number, typed_int

    assert [typed_int(value) for value in OTHER_DIGITS] == [None] * 5 + [None, None, None, 0, None, None, None]
    assert typed_int("2147483647") == 2**31 - 1 and typed_int("2147483648") is None
    assert typed_int("42") == 42 and typed_int(None) is None
    assert [page_number(value) for value in ("²", "9" * 5000, "0", "-1", "7", "100001")] == [1, 1, 1, 1, 7, 100000]


def test_market_page_and_conferral_read_other_scripts_digits_as_nothing(client, auth, db, make_market):
    market = make_market()
    for value in ("²", "①", "9" * 5000):
        response = client.get(f"/m/{market.token}?page={value}")
        assert response.status_code == 200 and response.mimetype == "text/html", value
    regulator = auth.login("hostile-regulator", role="regulator", scope="region:450403")
    for target in ("²", "①", "١", "９"):
        response = client.post("/api/v1/models", json={"kind": "market", "target": target, "citation": "诚信经营"},
                               headers=regulator.headers)
        assert (response.status_code, error_code(response)) == (404, "EXEMPLAR_TARGET_NOT_FOUND"), target


def test_a_grant_scope_must_be_an_ascii_row_id(client, auth, db):
    from app.core.errors import APIError
    from app.identity.services import parse_scope

    for scope in ("market:²", "org:①", "market:" + "9" * 5000, "market:99999999999"):
        with pytest.raises(APIError) as refused:
            parse_scope(scope)
        assert refused.value.code == "SCOPE_INVALID", scope


def test_region_codes_in_other_scripts_are_not_region_codes():
    from app.core.regions import is_valid_code

    assert is_valid_code("450403") and not is_valid_code("٤٥٠٤٠٣") and not is_valid_code("４５０４０３")


@pytest.fixture
def console(client, auth):
    from tests.console.conftest import ConsoleActions

    return ConsoleActions(client, auth)


def test_console_pages_read_page_and_id_parameters_typed_in_other_scripts(client, console, make_market):
    make_market()
    console.login("hostile-console-admin", role="admin")
    paths = ["/console/", "/console/markets", "/console/queues/claims", "/console/queues/reports",
             "/console/orgs", "/console/activities"]
    failures = []
    for path in paths:
        for value in ("²", "①", "9" * 5000):
            response = client.get(path, query_string={"page": value})
            if response.status_code != 200 or response.mimetype != "text/html":
                failures.append(f"{path}?page={value[:8]}: {response.status_code}")
    for value in ("²", "9" * 5000):
        response = client.get("/console/activities", query_string={"org": value})
        if response.status_code != 200:
            failures.append(f"activities?org={value[:8]}: {response.status_code}")
    csrf = console.csrf()
    for key in ("claims", "credentials", "pledges", "memberships", "leave"):
        response = client.post(f"/console/queues/{key}/bulk",
                               data={"csrf_token": csrf, "ids": ["²", "9" * 5000, str(2**40), "-1"]})
        if response.status_code != 422 or "请先勾选" not in response.get_data(as_text=True):
            failures.append(f"bulk {key}: {response.status_code}")  # nothing readable was ticked
    for path, field in (("/console/exports/pledges.xlsx", "market_id"), ("/console/exports/attendance.xlsx", "activity_id")):
        for value in ("²", "9" * 5000, str(2**40)):
            response = client.post(path, data={"csrf_token": csrf, field: value})
            if not 400 <= response.status_code < 500 or response.mimetype != "text/html":
                failures.append(f"{path} {field}={value[:8]}: {response.status_code} {response.mimetype}")
    assert not failures, "\n".join(failures)


def _multipart_file_fields(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in ("post", "put", "patch"):
                continue
            content = (operation.get("requestBody") or {}).get("content", {})
            if "multipart/form-data" not in content:
                continue
            schema = content["multipart/form-data"]["schema"]
            if "$ref" in schema:
                schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
            for name, prop in schema.get("properties", {}).items():
                if "binary" in (prop.get("format"), prop.get("items", {}).get("format")):
                    yield method, re.sub(r"\{\w+\}", "1", path), name


def test_a_text_part_under_a_file_name_is_that_fields_error_on_every_multipart_route(client, auth):
    """A plain form field named like the file (`photos=abc`) reached the view as a string,
    which has no stream: a 500 on every multipart route."""
    admin = auth.login("hostile-admin", role="admin")
    operations = list(_multipart_file_fields(client))
    assert len(operations) >= 5
    failures = []
    for method, path, name in operations:
        response = client.open(path, method=method.upper(), data={name: "not a file"},
                               content_type="multipart/form-data", headers=admin.headers)
        got = (response.status_code, error_code(response))
        if got != (422, "VALIDATION_ERROR") or name not in response.get_json()["error"]["details"]["fields"]:
            failures.append(f"{method.upper()} {path} [{name}]: {got}")
    assert not failures, "\n".join(failures)


def test_a_fraction_is_not_an_integer(client, auth, regions):
    regulator = auth.login("hostile-regulator", role="regulator", scope="region:450403")
    for value in (1.5, 0.999, 180.0000001):
        response = client.put("/api/v1/models/criteria", json={"region": "450403", "stall": {"pledge_days": value}},
                              headers=regulator.headers)
        assert (response.status_code, error_code(response)) == (422, "VALIDATION_ERROR"), value
    assert client.put("/api/v1/models/criteria", json={"region": "450403", "stall": {"pledge_days": 90.0}},
                      headers=regulator.headers).get_json()["stall"]["pledge_days"] == 90


# -- uploaded spreadsheets ---------------------------------------------------------------------------
def _xlsx_with_sheet(rows_xml: str, dimension: str = "A1:B2", prologue: str = "") -> bytes:
    """A real workbook (openpyxl) whose first sheet's rows are replaced by `rows_xml`."""
    import zipfile

    from tests.jobs.test_stall_import import xlsx

    base = xlsx([("摊位号", "备注"), ("A-01", "x")])
    source = zipfile.ZipFile(io.BytesIO(base))
    sheet = source.read("xl/worksheets/sheet1.xml").decode()
    head, _, tail = sheet.partition("<sheetData>")
    head = re.sub(r'<dimension ref="[^"]*"', f'<dimension ref="{dimension}"', head)
    sheet = prologue + head + "<sheetData>" + rows_xml + "</sheetData>" + tail.partition("</sheetData>")[2]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            data = sheet.encode() if info.filename == "xl/worksheets/sheet1.xml" else source.read(info.filename)
            archive.writestr(info.filename, data)
    return out.getvalue()


HEADER_ROW = '<row r="1"><c r="A1" t="inlineStr"><is><t>摊位号</t></is></c></row>'
LOL = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
XLSX_BOMBS = {
    # openpyxl yields every row up to a lone cell's: a 5 KB file was 14 s of CPU (and, with a
    # dimension of A1:XFD1048576, each of those rows 16,384 cells wide: hours).
    "a cell in the sheet's last row": (HEADER_ROW + '<row r="1048576"><c r="A1048576" t="inlineStr">'
                                       '<is><t>Z-1</t></is></c></row>', "表格超过 40000 行"),
    "a cell in column XFD": (HEADER_ROW + '<row r="2"><c r="XFD2" t="inlineStr"><is><t>Z-1</t></is></c></row>',
                             "表格超过 200 列"),
    # openpyxl builds a row's cells before yielding it: hundreds of MB for one row.
    "a row of 300,000 cells": (HEADER_ROW + '<row r="2">' + '<c t="inlineStr"><is><t>x</t></is></c>' * 300_000
                               + "</row>", "表格超过 200 列"),
    "a million empty rows": (HEADER_ROW + "<row/>" * 1_000_000, "表格超过 40000 行"),
}


@pytest.fixture
def importer(client, auth, make_market):
    from tests.jobs.test_jobs import manager_of

    market = make_market()
    manager = manager_of(auth, market)

    def upload(data: bytes, filename: str = "摊位.xlsx"):
        return client.post(f"/api/v1/markets/{market.id}/stall-imports", headers=manager.headers,
                           data={"file": (io.BytesIO(data), filename)}, content_type="multipart/form-data")

    return upload


@pytest.mark.parametrize("label", list(XLSX_BOMBS))
def test_a_workbook_shaped_to_exhaust_the_reader_is_refused_before_it_is_read(importer, db, label):
    from sqlalchemy import func, select

    from app.jobs.models import Job

    rows_xml, reason = XLSX_BOMBS[label]
    response = importer(_xlsx_with_sheet(rows_xml, dimension="A1:A1"))
    assert (response.status_code, error_code(response)) == (422, "STALL_IMPORT_BAD_FILE")
    assert response.get_json()["error"]["details"]["reason"] == reason
    assert db.session.scalar(select(func.count()).select_from(Job)) == 0


def test_entity_declarations_in_a_workbook_are_refused(importer):
    bomb = _xlsx_with_sheet(HEADER_ROW + '<row r="2"><c r="A2" t="inlineStr"><is><t>&l9;</t></is></c></row>',
                            prologue=f'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY l0 "lol">{LOL}]>')
    response = importer(bomb)
    assert (response.status_code, error_code(response)) == (422, "STALL_IMPORT_BAD_FILE")


def test_a_dimension_that_claims_the_whole_sheet_is_not_believed(thread_jobs, importer, client, auth):
    """The stored <dimension> is a hint a file may get wrong: the rows as written are read."""
    rows = HEADER_ROW + '<row r="2"><c r="A2" t="inlineStr"><is><t>A-02</t></is></c></row>'
    response = importer(_xlsx_with_sheet(rows, dimension="A1:XFD1048576"))
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["progress"]["total"] == 1


@pytest.mark.parametrize("name", ["广\x1b西", "广" * 65, "广\x85西"])
def test_a_region_file_with_a_name_no_column_holds_is_refused_at_once(client, auth, db, name):
    """Found by the database in the job's second batch, after the first was committed: half a
    table imported. Now the file is refused when it is uploaded, naming the line."""
    from sqlalchemy import func, select

    from app.core.regions import Region

    admin = auth.login("hostile-admin", role="admin")
    lines = [f"{450000 + i * 100},城{i}" for i in range(1, 1500)] + [f"459900,{name}"]
    response = client.post("/api/v1/regions/imports", headers=admin.headers, content_type="multipart/form-data",
                           data={"file": (io.BytesIO("\n".join(lines).encode()), "regions.csv")})
    assert (response.status_code, error_code(response)) == (422, "REGION_FILE_INVALID")
    assert "1500" in response.get_json()["error"]["details"]["reason"]
    assert db.session.scalar(select(func.count()).select_from(Region)) == 0


def test_a_console_url_no_route_matches_is_the_consoles_error_page(client, console, auth):
    """The app's envelope answered these page navigations (raw JSON in the browser)."""
    for signed_in in (False, True):
        if signed_in:
            console.login("hostile-console-admin", role="admin")
        for path, status in (("/console/nope", 404), (f"/console/markets/{2**31}", 404), ("/console/markets/²", 404),
                             ("/console/logout", 405)):
            page = client.get(path, headers={"Accept": "text/html"})
            assert (page.status_code, page.mimetype) == (status, "text/html"), path
            assert "出错了" in page.get_data(as_text=True)
            fetched = client.get(path, headers={"Accept": "application/json"})
            assert fetched.status_code == status and error_code(fetched) in ("NOT_FOUND", "METHOD_NOT_ALLOWED")
    api = client.get("/api/v1/nope", headers={"Accept": "text/html"})
    assert api.status_code == 404 and error_code(api) == "NOT_FOUND"
    other = client.get(f"/m/x/{'y' * 3}")
    assert other.status_code == 404 and error_code(other) == "NOT_FOUND"
    matched = client.get("/console/queues/nope", headers={"Accept": "text/html"})  # the view's own abort(404)
    assert matched.status_code == 404 and matched.mimetype == "text/html"


def test_path_ids_are_ascii_digits(client, auth, make_market):
    """werkzeug's <int:> reads any script's digits: /markets/１ was market 1 under another URL."""
    market = make_market()
    admin = auth.login("hostile-admin", role="admin")
    assert client.get(f"/api/v1/markets/{market.id}", headers=admin.headers).status_code == 200
    for other in ("１", "١", "۱", "𝟏"):
        response = client.get(f"/api/v1/markets/{other}", headers=admin.headers)
        assert (response.status_code, error_code(response)) == (404, "NOT_FOUND"), other


def test_console_forms_and_queries_obey_the_apis_text_rule(client, console, shop, db):
    """Console forms were read without the API's text check: a NUL in a reason reached
    PostgreSQL (a DataError answered as "数值超出允许范围" in JSON), an escape character was stored."""
    market, manager, stalls, login, merchant_id = shop.held_stall()
    console.login("hostile-console-admin", role="admin")
    csrf = console.csrf()
    for value in ("a\x00b", "\x1b[31m", "a\x85b"):
        page = client.get("/console/markets", query_string={"q": value})
        assert (page.status_code, page.mimetype) == (422, "text/html") and "无法识别的字符" in page.get_data(as_text=True)
        released = client.post(f"/console/stalls/{stalls[0]['token']}/release", data={"csrf_token": csrf, "reason": value})
        assert released.status_code == 422 and "无法识别的字符" in released.get_data(as_text=True)
        fetched = client.post(f"/console/stalls/{stalls[0]['token']}/release", data={"reason": value},
                              headers={"X-CSRF-Token": csrf})
        assert (fetched.status_code, error_code(fetched)) == (422, "TEXT_INVALID_CHARACTERS")
    # Nothing was released: the stall is still held, and a readable reason releases it.
    released = client.post(f"/console/stalls/{stalls[0]['token']}/release", data={"csrf_token": csrf, "reason": "不再经营"})
    assert released.status_code == 303, released.get_data(as_text=True)[:300]


def test_region_codes_in_other_scripts_digits_are_refused_as_malformed(client, auth, regions):
    """`^\\d{6}$` took Arabic-Indic digits (then a 404 REGION_NOT_FOUND); every region field now
    shares one ASCII rule (miniprogram_api.common.REGION_CODE) and answers 422."""
    regulator = auth.login("reg-digits", role="regulator", scope="region:450400")
    for value in ("٤٥٠٤٠٠", "４５０４００", "45040０"):
        response = client.get("/api/v1/stats/overview", query_string={"region": value}, headers=regulator.headers)
        assert response.status_code == 422 and response.get_json()["error"]["code"] == "VALIDATION_ERROR", value
    created = client.post("/api/v1/markets", json={"name": "测试市场", "region_code": "٤٥٠٤٠٣"}, headers=regulator.headers)
    assert created.status_code == 422, created.get_json()
