"""Markets' background jobs: the sticker sheet of a whole market (a 5,000-stall sheet takes
longer than any request may), and the size under which the direct download still answers."""
from __future__ import annotations

import math
import tempfile

from sqlalchemy import func, select

from app.core.errors import APIError, register_codes
from app.extensions import db
from app.jobs.registry import job_kind
from app.jobs.services import refuse_direct_if_large, submit

# Stalls the direct GET …/qr-sheet.pdf still draws inside the request (about 21 pages, a few
# seconds); bigger markets use the job.
DIRECT_SHEET_MAX_STALLS = 500
STICKER_SHEET = "sticker_sheet"

register_codes({
    "STICKER_SHEET_USE_JOB": (409, "本市场摊位较多，贴纸 PDF 需要较长时间生成，请使用“后台生成”，完成后再下载"),
})


def stall_count(market_id: int) -> int:
    from app.markets.models import Stall

    return db.session.scalar(select(func.count()).select_from(Stall).where(Stall.market_id == market_id)) or 0


def sheet_pages(stalls: int) -> int:
    from app.markets.qr import PER_PAGE

    return max(1, math.ceil(stalls / PER_PAGE))


def refuse_direct_sheet_if_large(market) -> None:
    refuse_direct_if_large(stall_count(market.id), DIRECT_SHEET_MAX_STALLS, "STICKER_SHEET_USE_JOB",
                           f"/api/v1/markets/{market.id}/qr-sheet-jobs", "stalls")


def submit_sticker_sheet(actor, market_id: int):
    """Queue the market's sticker sheet (the same check as the direct download)."""
    from app.markets.services import manage_market

    market, _ = manage_market(actor, market_id)
    total = sheet_pages(stall_count(market.id))
    return submit(actor, STICKER_SHEET, {"market_id": market.id}, scope=("market", str(market.id)), total=total,
                  message=f"排队中：{market.name} 贴纸 PDF，共 {total} 页")


def _may_read(user, job) -> None:
    """The owner still manages the market (a revoked manager no longer downloads its sheet)."""
    from app.markets.services import manage_market

    manage_market(user, int(job.params["market_id"]))


@job_kind(STICKER_SHEET, title="摊位二维码贴纸 PDF", may_read=_may_read, timeout_seconds=3600)
def sticker_sheet(ctx, market_id: int) -> None:
    from app.markets.models import Market
    from app.markets.qr import market_stall_rows, write_sticker_sheet

    market = db.session.get(Market, market_id)
    if market is None:
        raise APIError(code="MARKET_NOT_FOUND")
    total = sheet_pages(stall_count(market.id))
    ctx.progress(0, total, f"正在生成：共 {total} 页")
    # Spooled: a small sheet stays in memory, a 5,000-stall one goes to a temporary file.
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as out:
        pages = write_sticker_sheet(out, market.name, market_stall_rows(market.id),
                                    lambda page: ctx.progress(page, total, f"正在生成：第 {page}/{total} 页"))
        out.seek(0)
        data = out.read()
    ctx.progress(pages, pages, f"已生成 {pages} 页，正在保存")
    ctx.save_result(data, f"{market.name}-摊位二维码贴纸.pdf", "application/pdf", "pdf")
