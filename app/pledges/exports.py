"""The pledge ledger of a market as an xlsx sheet (承诺台账) for its manager or regulator.

Managers see signers' full names (they reviewed them); phone numbers are never exported."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from io import BytesIO

from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy import select

from app.core.auth import authorize
from app.core.time import to_local, utcnow
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
# A cell starting with one of these would be read as a formula by spreadsheet programs.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _local(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return to_local(value).strftime(fmt) if value else ""


def _stall_numbers(market_id: int, merchant_ids: set[int]) -> dict[int, str]:
    rows = db.session.execute(select(Stall.merchant_id, Stall.number)
                              .where(Stall.market_id == market_id, Stall.merchant_id.in_(merchant_ids))
                              .order_by(Stall.number))
    numbers: dict[int, list[str]] = defaultdict(list)
    for merchant_id, number in rows:
        numbers[merchant_id].append(number)
    return {merchant_id: "、".join(values) for merchant_id, values in numbers.items()}


def market_pledges_xlsx(actor, market_id: int, status: str | None,
                        now: datetime | None = None) -> tuple[Market, BytesIO]:
    now = now or utcnow()
    market = get_market(market_id)
    authorize(actor, REVIEWER_ROLES, market_target(market))
    pledges = list(db.session.scalars(market_pledges_stmt(market.id, status, now)))
    stalls = _stall_numbers(market.id, {p.merchant_id for p in pledges}) if pledges else {}

    book = Workbook()
    sheet = book.active
    sheet.title = "诚信经营承诺"
    sheet.append([name for name, _ in COLUMNS])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for index, (_, width) in enumerate(COLUMNS, start=1):
        sheet.column_dimensions[sheet.cell(row=1, column=index).column_letter].width = width
    sheet.freeze_panes = "A2"
    for pledge in pledges:
        sheet.append([safe_cell(value) for value in (
            pledge.id, pledge.merchant.name, pledge.merchant.uscc, stalls.get(pledge.merchant_id, ""),
            pledge.signer_name, pledge.title, pledge.template_version,
            STATUS_LABELS[pledge.status_at(now)], _local(pledge.created_at), _local(pledge.reviewed_at),
            _local(pledge.valid_from, "%Y-%m-%d"), last_local_day(pledge.valid_until) or "",
            pledge.review_reason or "", _local(pledge.revoked_at), pledge.revoke_reason or "",
            pledge.extra_commitments or "",
        )])
    stream = BytesIO()
    book.save(stream)
    stream.seek(0)
    return market, stream
