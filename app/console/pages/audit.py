"""审计日志: the trail GET /api/v1/audit-log reads (app.worklists.audit.audit_log: administrators
all of it, regulators the entries about objects in their region), filtered by target (type, id),
actor, action and date, paged, newest first. People appear as the API shows them: the name
organisers see and the phone masked (app.identity.people.card)."""
from __future__ import annotations

import json
from datetime import date

from flask import g, request, url_for
from marshmallow import Schema, fields, validate

from app.console.blueprint import bp, render_page
from app.console.forms import Form
from app.core.ids import INT32_MAX
from app.core.time import to_local
from app.identity.models import ROLE_LABELS

PER_PAGE = 30
# Object types the services record (app.core.audit.record callers), for the filter's suggestions.
TARGET_TYPES = (("credential", "证照"), ("pledge", "诚信承诺"), ("pledge_template", "承诺模板"), ("stall", "摊位"),
                ("stall_claim", "摊位认领"), ("market", "市场"), ("merchant", "经营主体"), ("user", "用户"),
                ("party_org", "党组织"), ("activity", "活动"), ("leave_request", "请假"), ("report", "骑手随手拍"),
                ("report_category", "随手拍类别"), ("exemplar_title", "示范称号"), ("care_station", "暖心驿站"),
                ("station_join_request", "骑手加入申请"), ("feedback", "消费者评价"), ("region", "行政区划"))
TARGET_LABELS = dict(TARGET_TYPES)
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)
DIFF_SHOWN = 6  # changed fields listed per row; the rest is counted


class AuditFilters(Schema):
    """The API's query (miniprogram_api/audit.py AuditArgs), as a form."""
    target_type = fields.String(load_default=None, validate=validate.Length(min=1, max=32))
    target_id = fields.String(load_default=None, validate=validate.Length(min=1, max=64))
    actor = fields.Integer(load_default=None, validate=validate.Range(min=1, max=INT32_MAX), strict=False)
    action = fields.String(load_default=None, validate=validate.Length(min=1, max=64))
    # Years a trail can hold (year 1 or 9999 would overflow turning a Beijing day into UTC).
    from_ = fields.Date(load_default=None, data_key="from", validate=validate.Range(min=FIRST_DAY, max=LAST_DAY))
    to = fields.Date(load_default=None, validate=validate.Range(min=FIRST_DAY, max=LAST_DAY))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100000))


@bp.get("/audit")
def audit():
    from app.worklists.audit import audit_log

    form = Form(request.args.copy())
    filters = form.load(AuditFilters())
    result, rows = None, []
    if filters is not None and filters["from_"] and filters["to"] and filters["from_"] > filters["to"]:
        form.add_error("to", "结束日期不能早于开始日期")
        filters = None
    if filters is not None:
        page = filters.pop("page")
        filters["from"] = filters.pop("from_")
        result = audit_log(g.console_user, filters, page, PER_PAGE)
        rows = [_row(entry) for entry in result["items"]]
    status = 200 if form.ok else 422
    return render_page("console/audit.html", nav_key="audit", title="审计日志", status=status, form=form,
                       result=result, rows=rows, pages=_pages(result), target_types=TARGET_TYPES,
                       page_url=_page_url)


def _pages(result: dict | None) -> int:
    if not result:
        return 0
    return max(1, -(-result["total"] // result["per_page"]))


def _page_url(page: int) -> str:
    args = {key: value for key, value in request.args.items() if key != "page" and value}
    return url_for("console.audit", page=page, **args)


def _row(entry) -> dict:
    from app.identity import people

    return {
        "id": entry.id,
        "at": f"{to_local(entry.at):%Y-%m-%d %H:%M:%S}",
        "action": entry.action,
        "actor": people.card(entry.actor_id),
        "actor_id": entry.actor_id,
        "role": ROLE_LABELS.get(entry.actor_role, entry.actor_role) if entry.actor_role else None,
        "target_type": entry.target_type,
        "target_label": TARGET_LABELS.get(entry.target_type, entry.target_type),
        "target_id": entry.target_id,
        "region_code": entry.region_code,
        "reason": entry.reason,
        "changes": _changes(entry.before, entry.after),
    }


def _changes(before: dict | None, after: dict | None) -> dict:
    """The fields that differ: [{field, before, after}] (the first DIFF_SHOWN), and how many more."""
    before, after = before or {}, after or {}
    keys = [key for key in dict.fromkeys([*before, *after]) if before.get(key) != after.get(key)]
    shown = [{"field": key, "before": _short(before.get(key)), "after": _short(after.get(key))}
             for key in keys[:DIFF_SHOWN]]
    return {"shown": shown, "more": max(0, len(keys) - DIFF_SHOWN)}


def _short(value, limit: int = 60) -> str:
    if value is None:
        return "—"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit - 1] + "…"
