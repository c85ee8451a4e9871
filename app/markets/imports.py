"""Bulk stall import: a market's stall numbers (and optional notes) from a CSV or xlsx file, as a
background job.

The request checks what it can see at once (size, format, header, row count) and keeps the file
in the object store; the job reads it in batches of MAX_STALLS_PER_CALL rows, applies the same
rules as POST …/stalls (services.stall_number_problem, services.add_stalls) and commits each
batch, so a rerun (a retry after a failure) skips what is already there instead of adding it
twice. The result is a small JSON report: created, skipped (the market has the number already),
and rejected rows with their row number and the reason in Chinese."""
from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass, field

from app.core.errors import APIError, register_codes
from app.core.safejson import has_bad_text
from app.extensions import db
from app.jobs.registry import job_kind
from app.jobs.services import submit
from app.jobs.uploads import INPUT_PARAM, read_input, read_upload, store_input

STALL_IMPORT = "stall_import"
MAX_IMPORT_BYTES = 2 * 1024 * 1024  # 20,000 rows of a number and a short note fit in well under it
MAX_IMPORT_ROWS = 20000
# An xlsx is a zip: what it unpacks to is bounded too (a small file must not expand to gigabytes).
MAX_XLSX_UNPACKED_BYTES = 64 * 1024 * 1024
# ... and its shape (checked before openpyxl reads it: _check_xml_part): rows written or
# numbered, cells in a row or the column they name, XML elements in any one part (a sheet of
# 20,000 rows of a number and a note has about 200,000).
MAX_XLSX_SHEET_ROWS = 2 * MAX_IMPORT_ROWS
MAX_XLSX_COLUMNS = 200
MAX_XLSX_ELEMENTS_PER_PART = 1_000_000
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ZIP_MAGIC, OLE_MAGIC = b"PK\x03\x04", b"\xd0\xcf\x11\xe0"
# Header cells that name the columns (compared without blanks, "*" marks and case).
# In order of preference: a sheet with both 摊位号 and 编号 takes 摊位号.
NUMBER_HEADERS = ("摊位号", "摊位编号", "摊位", "编号", "number", "stallnumber", "stall_number", "stall", "no", "no.")
NOTE_HEADERS = ("备注", "说明", "note", "notes", "remark", "remarks")

register_codes({
    "STALL_IMPORT_BAD_FILE": (422, "无法读取导入文件：请上传 CSV（UTF-8 或 GBK 编码）或 Excel（.xlsx）文件"),
    "STALL_IMPORT_NO_NUMBER_COLUMN": (422, "导入文件的第一行须为表头，且有“摊位号”一列（可另有“备注”一列）"),
    "STALL_IMPORT_EMPTY": (422, "导入文件中没有摊位号"),
    "STALL_IMPORT_TOO_MANY_ROWS": (422, f"导入文件最多 {MAX_IMPORT_ROWS} 行摊位，请拆分后分批导入"),
})


# -- reading the file ----------------------------------------------------------------------------
@dataclass
class ImportRow:
    row: int  # the row number the manager sees in the spreadsheet (the header is row 1)
    number: str
    note: str | None


def _cell_text(value) -> str:
    """A cell as typed: 101 stays "101" (Excel stores it as 101.0), blanks trimmed."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _header_key(value) -> str:
    return _cell_text(value).replace(" ", "").replace("\u3000", "").strip("*＊").lower()


class _ShapeRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _column_number(ref: str) -> int:
    """"XFD12" -> 16384 (the letters of a cell reference)."""
    number = 0
    for char in ref:
        if not "A" <= char <= "Z":
            break
        number = number * 26 + ord(char) - 64
    return number


def _check_xml_part(name: str, part) -> None:
    """One streaming pass (expat, no tree) over a part of the workbook, before openpyxl reads
    it: openpyxl fills the gaps a sheet leaves (a lone cell in row 1,048,576 or column XFD, or a
    dimension that claims so, makes it yield millions of empty rows or cells: minutes of CPU
    from a 5 KB file), builds a whole row before yielding it, and keeps every shared string."""
    from xml.parsers import expat

    sheet = name.startswith("xl/worksheets/")
    seen = {"elements": 0, "rows": 0, "cells": 0}

    def start(tag, attributes):
        seen["elements"] += 1
        if seen["elements"] > MAX_XLSX_ELEMENTS_PER_PART:
            raise _ShapeRefused("文件内容过多")
        if not sheet:
            return
        tag = tag.rpartition(":")[2]
        if tag == "row":
            seen["rows"], seen["cells"] = seen["rows"] + 1, 0
            number = attributes.get("r", "")
            if seen["rows"] > MAX_XLSX_SHEET_ROWS or (number.isascii() and number.isdigit()
                                                      and len(number) < 9 and int(number) > MAX_XLSX_SHEET_ROWS):
                raise _ShapeRefused(f"表格超过 {MAX_XLSX_SHEET_ROWS} 行")
        elif tag == "c":
            seen["cells"] += 1
            if seen["cells"] > MAX_XLSX_COLUMNS or _column_number(attributes.get("r", "")) > MAX_XLSX_COLUMNS:
                raise _ShapeRefused(f"表格超过 {MAX_XLSX_COLUMNS} 列")

    def no_doctype(*args):  # a workbook has none; a DTD is how entity bombs are declared
        raise _ShapeRefused("文件含有不支持的内容")

    parser = expat.ParserCreate()
    parser.StartElementHandler = start
    parser.StartDoctypeDeclHandler = no_doctype
    parser.ParseFile(part)


def _check_xlsx_shape(data: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        if sum(info.file_size for info in archive.infolist()) > MAX_XLSX_UNPACKED_BYTES:
            raise _ShapeRefused("文件解压后过大")
        for info in archive.infolist():
            if info.filename.endswith((".xml", ".rels")):
                with archive.open(info) as part:
                    _check_xml_part(info.filename, part)


def _xlsx_rows(data: bytes):
    from openpyxl import load_workbook

    try:
        _check_xlsx_shape(data)
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except _ShapeRefused as refused:
        raise APIError(code="STALL_IMPORT_BAD_FILE", details={"reason": refused.reason})
    except Exception:  # not a workbook (a zip of something else, a damaged file, malformed XML)
        raise APIError(code="STALL_IMPORT_BAD_FILE")
    try:
        sheet = book.worksheets[0] if book.worksheets else None
        if sheet is None:
            return
        sheet.reset_dimensions()  # the rows as written; a dimension may claim A1:XFD1048576
        for values in sheet.iter_rows(values_only=True):
            yield [_cell_text(value) for value in values]
    finally:
        book.close()


def _csv_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030 (what Excel in China saves a CSV as)."""
    if b"\x00" in data:
        raise APIError(code="STALL_IMPORT_BAD_FILE")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise APIError(code="STALL_IMPORT_BAD_FILE")


def _csv_rows(data: bytes):
    text = _csv_text(data)
    try:
        # The sniffer is quadratic in what it reads (4 KB of quotes and line breaks took 2 s): a
        # header and a few rows say the delimiter.
        dialect = csv.Sniffer().sniff(text[:1024], delimiters=",\t;")
    except csv.Error:  # one column: nothing to sniff
        dialect = csv.excel
    try:
        for values in csv.reader(io.StringIO(text, newline=""), dialect):
            yield [value.strip() for value in values]
    except csv.Error:
        raise APIError(code="STALL_IMPORT_BAD_FILE")


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    """The position of the first of `names` (by preference) that the header has."""
    return next((header.index(name) for name in names if name in header), None)


def file_format(data: bytes) -> str:
    if data.startswith(ZIP_MAGIC):
        return "xlsx"
    if data.startswith(OLE_MAGIC):  # the old .xls: say what to do instead
        raise APIError(code="STALL_IMPORT_BAD_FILE", details={"reason": "不支持旧版 .xls 文件，请另存为 .xlsx 或 CSV"})
    return "csv"


def read_rows(data: bytes):
    """The file's stall rows (blank rows left out), after checking its header."""
    rows = _xlsx_rows(data) if file_format(data) == "xlsx" else _csv_rows(data)
    header, number_at, note_at = None, None, None
    for row_no, values in enumerate(rows, start=1):
        if not any(values):
            continue
        if header is None:
            header = [_header_key(value) for value in values]
            number_at = _column(header, NUMBER_HEADERS)
            note_at = _column(header, NOTE_HEADERS)
            if number_at is None:
                raise APIError(code="STALL_IMPORT_NO_NUMBER_COLUMN",
                               details={"header": [value for value in values if value][:10]})
            continue
        number = values[number_at] if number_at < len(values) else ""
        note = values[note_at] if note_at is not None and note_at < len(values) else ""
        yield ImportRow(row_no, number, note or None)
    if header is None:
        raise APIError(code="STALL_IMPORT_EMPTY")


def count_rows(data: bytes) -> int:
    """Rows to import: checks everything the submit can see (format, header, empty, too many)."""
    count = 0
    for _ in read_rows(data):
        count += 1
        if count > MAX_IMPORT_ROWS:
            raise APIError(code="STALL_IMPORT_TOO_MANY_ROWS", details={"max_rows": MAX_IMPORT_ROWS})
    if count == 0:
        raise APIError(code="STALL_IMPORT_EMPTY")
    return count


# -- submitting ----------------------------------------------------------------------------------
def submit_stall_import(actor, market_id: int, stream):
    """Check the file, keep it, queue the job. The same access as adding stalls by hand."""
    from app.markets.services import manage_market

    market, _ = manage_market(actor, market_id)
    data = read_upload(stream, MAX_IMPORT_BYTES)
    rows = count_rows(data)
    extension = file_format(data)
    key = store_input(data, extension, XLSX_TYPE if extension == "xlsx" else "text/csv")
    return submit(actor, STALL_IMPORT, {"market_id": market.id, INPUT_PARAM: key}, scope=("market", str(market.id)),
                  total=rows, message=f"排队中：向{market.name}导入 {rows} 行摊位")


# -- the job -------------------------------------------------------------------------------------
@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    skipped: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)

    def reject(self, row: ImportRow, reason: str) -> None:
        self.rejected.append({"row": row.row, "number": row.number, "reason": reason})

    def summary(self) -> str:
        return (f"新增 {self.created} 个摊位，已存在跳过 {len(self.skipped)} 个，"
                f"未导入 {len(self.rejected)} 行")

    def as_json(self, market) -> bytes:
        """Counts, and the rows that did not go in (what the manager has to look at); the created
        ones are all the others."""
        return json.dumps({
            "market": {"id": market.id, "name": market.name}, "rows": self.rows,
            "created": self.created, "skipped": len(self.skipped), "rejected": len(self.rejected),
            "skipped_rows": self.skipped, "rejected_rows": self.rejected,
        }, ensure_ascii=False, separators=(",", ":")).encode()


def _row_problem(row: ImportRow) -> str | None:
    from app.markets.services import STALL_NOTE_MAX, stall_number_problem

    if has_bad_text(row.number):
        return "摊位号含有无法识别的字符"
    problem = stall_number_problem(row.number)
    if problem:
        return problem
    if row.note is not None:
        if has_bad_text(row.note):
            return "备注含有无法识别的字符"
        if len(row.note) > STALL_NOTE_MAX:
            return f"备注超过 {STALL_NOTE_MAX} 个字"
    return None


def _content_problem(owner, row: ImportRow) -> str | None:
    """The content check every stall number and note passes in a request (app.core.content),
    made here row by row as the uploader: a risky row is rejected, the others go in."""
    from app.core.content import COMMENT, PROFILE
    from app.wechat.client import ensure_text_safe

    for text, scene, field_name, label in ((row.number, PROFILE, "number", "摊位号"),
                                           (row.note, COMMENT, "note", "备注")):
        try:
            ensure_text_safe(text, owner.openid, scene=scene, field=field_name)
        except APIError as exc:
            if exc.code != "CONTENT_RISKY":
                raise  # WeChat unreachable: the job fails with that reason and can be retried
            return f"{label}含有不宜公开的内容"
    return None


def _import_batch(owner, role, market, batch: list[ImportRow], first_row: dict[str, int],
                  report: ImportReport) -> None:
    from app.markets.services import add_stalls, existing_stall_numbers

    candidates = []
    for row in batch:
        problem = _row_problem(row)
        if problem:
            report.reject(row, problem)
        elif row.number in first_row:
            report.reject(row, f"与第 {first_row[row.number]} 行的摊位号重复")
        else:
            first_row[row.number] = row.row
            candidates.append(row)
    existing = existing_stall_numbers(market.id, [row.number for row in candidates])
    new = []
    for row in candidates:
        if row.number in existing:
            report.skipped.append({"row": row.row, "number": row.number})
            continue
        problem = _content_problem(owner, row)
        if problem:
            report.reject(row, problem)
            continue
        new.append(row)
    report.created += add_stalls(owner, role, market, [(row.number, row.note) for row in new])


def _may_read(user, job) -> None:
    from app.markets.services import manage_market

    manage_market(user, int(job.params["market_id"]))


@job_kind(STALL_IMPORT, title="批量导入摊位", may_read=_may_read, timeout_seconds=3600)
def stall_import(ctx, market_id: int, input_key: str) -> None:
    from app.markets.services import MAX_STALLS_PER_CALL, manage_market

    owner = ctx.owner()
    market, role = manage_market(owner, market_id)  # still theirs to manage (a role may be revoked since)
    name = market.name
    data = read_input(input_key)
    report, first_row, batch = ImportReport(), {}, []

    def flush_batch() -> None:
        _import_batch(owner, role, market, batch, first_row, report)
        db.session.commit()  # per batch: a rerun skips what this one added
        batch.clear()
        ctx.progress(report.rows, None, f"已处理 {report.rows} 行：{report.summary()}")

    for row in read_rows(data):
        report.rows += 1
        batch.append(row)
        if len(batch) >= MAX_STALLS_PER_CALL:
            flush_batch()
    if batch:
        flush_batch()
    ctx.summary = report.summary()
    ctx.save_result(report.as_json(market), f"{name}-摊位导入结果.json", "application/json; charset=utf-8", "json")
