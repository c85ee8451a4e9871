"""Chinese labels of the option values (codes) the API takes and returns, for the OpenAPI
document: every enum of codes carries `x-enum-labels` {code: 中文} (codes stay English; values
that are Chinese already, such as 农贸市场, label themselves)."""
from __future__ import annotations

from app.activities.models import AMENITIES, AUDIENCES
from app.credentials.models import CREDENTIAL_KINDS
from app.identity.models import ROLE_LABELS
from app.orgs.models import MEMBER_STANDINGS, ORG_KINDS, ORG_SECTORS
from app.pledges.models import STATUS_LABELS as PLEDGE_STATUS_LABELS

DECISIONS = {"approve": "通过", "reject": "驳回", "uphold": "核实属实", "dismiss": "不予采纳"}
STATUSES = {
    **PLEDGE_STATUS_LABELS, "verified": "已通过", "confirmed": "已确认", "released": "已解除",
    "open": "待处理", "upheld": "属实", "dismissed": "未采纳", "joined": "已加入", "scheduled": "已安排",
    "cancelled": "已取消", "sent": "已发送", "no_consent": "未订阅", "failed": "发送失败",
}
VERDICT_LEVELS = {"good": "放心摊位", "partial": "部分公示", "none": "未公示", "warning": "近期有经核实的投诉"}
OTHER = {
    "url": "普通二维码", "wxacode": "小程序码", "json": "JSON 数据", "xlsx": "Excel 表格", "month": "本月", "all": "累计",
    "credential_expiry": "证照到期提醒", "pledge_renewal": "承诺续签提醒", "activity_start": "活动开始提醒",
    "branch_duty": "支部例行工作提醒", "review_digest": "待审核汇总", "review_result": "审核结果通知",
    "on_time": "按时", "late": "迟到", "rotating_qr": "扫码签到", "manual": "手工补签",
    "queued": "排队中", "running": "执行中", "succeeded": "已完成", "expired": "结果已过期",
}
ENUM_LABELS: dict[str, str] = {**STATUSES, **DECISIONS, **VERDICT_LEVELS, **OTHER, **AMENITIES, **AUDIENCES,
                               **CREDENTIAL_KINDS, **ROLE_LABELS, **MEMBER_STANDINGS, **ORG_KINDS, **ORG_SECTORS}


def document_enum_labels(self, field, ret=None, **kwargs) -> dict:
    """apispec attribute function: `x-enum-labels` beside every enum of codes."""
    values = (ret or {}).get("enum")
    if not values or not all(isinstance(v, str) and v.isascii() for v in values):
        return {}
    # A field may carry its own words for codes shared with others (a job's "failed" is not a
    # notification's 发送失败): metadata={"x-enum-labels": {...}}.
    own = field.metadata.get("x-enum-labels") or {}
    return {"x-enum-labels": {value: own.get(value) or ENUM_LABELS.get(value, value) for value in values}}
