"""The pledge ledger of a market as an xlsx sheet (承诺台账) for its manager or regulator.

Managers see signers' full names (they reviewed them); phone numbers are never exported."""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

from sqlalchemy import select

from app.identity.auth import authorize
from app.core.time import to_local, utcnow
from app.core.xlsx import Sheet
from app.extensions import db
from app.markets.models import Market, Stall
from app.markets.services import get_market, market_target
from app.pledges.models import STATUS_LABELS
from app.pledges.queries import last_local_day
from app.pledges.services import REVIEWER_ROLES, market_pledges_stmt

COLUMNS = (
    ("编号", 8), ("经营主体", 28), ("统一社会信用代码", 22), ("摊位号", 14), ("签署人", 10),
    ("承诺书", 20), ("版本", 6), ("状态", 8), ("提交时间", 18), ("审核时间", 18), ("生效日期", 12),
    ("有效期至", 12), ("审核意见", 24), ("撤销时间", 18), ("撤销原因", 24), ("补充承诺", 40),
)


def _local_date(value: datetime | None) -> date | None:
    return to_local(value).date() if value else None


def _last_day(valid_until: datetime | None) -> date | None:
    last = last_local_day(valid_until)
    return date.fromisoformat(last) if last else None


def _stall_numbers(market_id: int, merchant_ids: set[int]) -> dict[int, str]:
    rows = db.session.execute(select(Stall.merchant_id, Stall.number)
                              .where(Stall.market_id == market_id, Stall.merchant_id.in_(merchant_ids))
                              .order_by(Stall.number))
    numbers: dict[int, list[str]] = defaultdict(list)
    for merchant_id, number in rows:
        numbers[merchant_id].append(number)
    return {merchant_id: "、".join(values) for merchant_id, values in numbers.items()}


def market_pledges_xlsx(actor, market_id: int, status: str | None,
                        now: datetime | None = None) -> tuple[Market, bytes]:
    now = now or utcnow()
    market = get_market(market_id)
    authorize(actor, REVIEWER_ROLES, market_target(market))
    pledges = list(db.session.scalars(market_pledges_stmt(market.id, status, now)))
    stalls = _stall_numbers(market.id, {p.merchant_id for p in pledges}) if pledges else {}
    heading = [f"{market.name} 诚信经营承诺台账",
               f"导出时间：{to_local(now):%Y-%m-%d %H:%M}    状态：{STATUS_LABELS.get(status, '全部') if status else '全部'}"
               f"    共 {len(pledges)} 份"]
    table = Sheet("诚信经营承诺", COLUMNS, heading=heading)
    for pledge in pledges:
        table.add((
            pledge.id, pledge.merchant.name, pledge.merchant.uscc, stalls.get(pledge.merchant_id, ""),
            pledge.signer_name, pledge.title, pledge.template_version,
            STATUS_LABELS[pledge.status_at(now)], pledge.created_at, pledge.reviewed_at,
            _local_date(pledge.valid_from), _last_day(pledge.valid_until), pledge.review_reason,
            pledge.revoked_at, pledge.revoke_reason, pledge.extra_commitments,
        ))
    return market, table.to_bytes()
