"""The pledge ledger (诚信经营承诺台账) of a big market as a background job: the same workbook as
GET …/pledges.xlsx (exports.market_pledges_xlsx), which answers directly only up to
DIRECT_LEDGER_MAX_PLEDGES pledges and otherwise points the client at the job."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from app.core.errors import register_codes
from app.core.time import to_local, utcnow
from app.extensions import db
from app.jobs.registry import job_kind
from app.jobs.services import refuse_direct_if_large, submit

PLEDGE_LEDGER = "pledge_ledger"
# Pledges the direct GET still writes inside the request (a few seconds at most).
DIRECT_LEDGER_MAX_PLEDGES = 2000
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

register_codes({
    "PLEDGE_LEDGER_USE_JOB": (409, "本市场的承诺较多，台账需要较长时间生成，请使用“后台生成”，完成后再下载"),
})


def ledger_filename(market, now: datetime) -> str:
    return f"诚信经营承诺台账-{market.name}-{to_local(now):%Y%m%d}.xlsx"


def ledger_size(market_id: int, status: str | None, now: datetime) -> int:
    from app.pledges.services import market_pledges_stmt

    return db.session.scalar(select(func.count()).select_from(
        market_pledges_stmt(market_id, status, now).order_by(None).subquery())) or 0


def refuse_direct_ledger_if_large(market_id: int, status: str | None) -> None:
    """Called by the direct download after its access check."""
    refuse_direct_if_large(ledger_size(market_id, status, utcnow()), DIRECT_LEDGER_MAX_PLEDGES,
                           "PLEDGE_LEDGER_USE_JOB", f"/api/v1/markets/{market_id}/pledge-ledger-jobs", "pledges")


def ledger_market(actor, market_id: int):
    """The market, if `actor` may read its ledger (the export's own check)."""
    from app.identity.auth import authorize
    from app.markets.services import get_market, market_target
    from app.pledges.services import REVIEWER_ROLES

    market = get_market(market_id)
    authorize(actor, REVIEWER_ROLES, market_target(market))
    return market


def submit_pledge_ledger(actor, market_id: int, status: str | None):
    market = ledger_market(actor, market_id)
    return submit(actor, PLEDGE_LEDGER, {"market_id": market.id, "status": status}, scope=("market", str(market.id)),
                  total=1, message=f"排队中：{market.name} 诚信经营承诺台账")


def _may_read(user, job) -> None:
    ledger_market(user, int(job.params["market_id"]))


@job_kind(PLEDGE_LEDGER, title="诚信经营承诺台账", may_read=_may_read, timeout_seconds=3600)
def pledge_ledger(ctx, market_id: int, status: str | None = None) -> None:
    from app.pledges.exports import market_pledges_xlsx

    now = utcnow()
    ctx.progress(0, 1, "正在生成台账")
    market, data = market_pledges_xlsx(ctx.owner(), market_id, status, now=now)
    ctx.progress(1, 1, "已生成，正在保存")
    ctx.summary = f"已生成：{market.name} 诚信经营承诺台账"
    ctx.save_result(data, ledger_filename(market, now), XLSX_TYPE, "xlsx")
