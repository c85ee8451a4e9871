"""Region import (行政区划, GB/T 2260 `code,name` CSV) as a background job, for administrators:
the same reader and upsert as `flask regions import` (app.core.regions), committed in batches
with progress. Existing codes are left alone, so a rerun adds nothing twice. Lives with the jobs
because regions are core (which may not import the jobs package)."""
from __future__ import annotations

import io
import json

from app.core.errors import APIError, register_codes
from app.extensions import db
from app.jobs.registry import job_kind
from app.jobs.services import submit
from app.jobs.uploads import INPUT_PARAM, read_input, read_upload, store_input

REGION_IMPORT = "region_import"
MAX_REGION_FILE_BYTES = 2 * 1024 * 1024  # the national table of three levels is about 60 KB
BATCH = 1000

register_codes({
    "REGION_FILE_INVALID": (422, "行政区划文件无法导入：须为 GB/T 2260 格式的 CSV（每行“代码,名称”，UTF-8 或 GBK 编码）"),
})


def _decoded(data: bytes) -> str:
    if b"\x00" in data:
        raise APIError(code="REGION_FILE_INVALID", details={"reason": "不是文本文件"})
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise APIError(code="REGION_FILE_INVALID", details={"reason": "无法识别文件编码"})


def read_regions(data: bytes) -> list[tuple[str, str]]:
    """The file's (code, name) rows by app.core.regions' reader; its complaint is the reason."""
    from app.core.regions import read_gbt2260_csv

    text = _decoded(data)
    try:
        rows = read_gbt2260_csv(io.StringIO(text, newline=""))
    except ValueError as exc:
        raise APIError(code="REGION_FILE_INVALID", details={"reason": str(exc)})
    except Exception:  # csv.Error: not a CSV at all
        raise APIError(code="REGION_FILE_INVALID")
    if not rows:
        raise APIError(code="REGION_FILE_INVALID", details={"reason": "文件中没有行政区划"})
    return rows


def _admin(user) -> None:
    from app.identity.auth import authorize

    authorize(user, ["admin"])


def submit_region_import(actor, stream):
    _admin(actor)
    data = read_upload(stream, MAX_REGION_FILE_BYTES)
    rows = read_regions(data)
    key = store_input(data, "csv", "text/csv")
    return submit(actor, REGION_IMPORT, {INPUT_PARAM: key}, total=len(rows),
                  message=f"排队中：导入 {len(rows)} 条行政区划")


@job_kind(REGION_IMPORT, title="导入行政区划", may_read=lambda user, job: _admin(user), timeout_seconds=1800)
def region_import(ctx, input_key: str) -> None:
    from app.core.regions import region_level, upsert_regions

    _admin(ctx.owner())
    rows = read_regions(read_input(input_key))
    # Parents first across batches too: each batch finds the levels above it already committed.
    rows.sort(key=lambda row: region_level(row[0]))
    added = 0
    for start in range(0, len(rows), BATCH):
        added += upsert_regions(rows[start:start + BATCH])
        db.session.commit()
        done = min(start + BATCH, len(rows))
        ctx.progress(done, len(rows), f"已处理 {done}/{len(rows)} 条，新增 {added} 条")
    ctx.summary = f"读取 {len(rows)} 条，新增 {added} 条，已有的 {len(rows) - added} 条未改动"
    ctx.save_result(json.dumps({"read": len(rows), "added": added, "unchanged": len(rows) - added},
                               ensure_ascii=False).encode(), "行政区划导入结果.json",
                    "application/json; charset=utf-8", "json")
