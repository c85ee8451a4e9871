"""Decision notices: whoever a decision affects is told, with the reason.

`tell()` writes one outbox row in the caller's transaction, so a decision that rolls back tells
nobody, and a retried request tells once (the outbox's dedupe key: user, kind, subject,
period). The row is an inbox entry always; the dispatcher also pushes it as a subscribe
message (template `review_result`) when the user has a consent left for it, and records
`no_consent` otherwise."""
from __future__ import annotations

from datetime import datetime

from app.core.time import to_local, utcnow
from app.reminders.outbox import Reminder, clip, enqueue

TEMPLATE = "review_result"

# Short Chinese words for a decision, as a subscribe message's `phrase` field takes them (≤ 5).
OUTCOME_WORDS = {
    "approved": "已通过", "verified": "已通过", "rejected": "未通过", "revoked": "已撤销",
    "upheld": "已核实", "dismissed": "未采纳", "changed": "有变更", "cancelled": "已取消",
    "released": "已解除", "accepted": "已受理", "unfounded": "不属实", "rectified": "已整改",
    "transferred": "已转办", "conferred": "已授予",
}


def tell_role_revoked(grant, reason: str) -> None:
    """The holder of a revoked role is told which, and why (identity, below this package, cannot
    call us: its callers do)."""
    from app.identity.models import ROLE_LABELS

    label = ROLE_LABELS.get(grant.role, grant.role)
    tell(grant.user_id, kind="role_revoked", subject=f"role_grant:{grant.id}", outcome="revoked",
         title="角色已撤销", body=f"您的“{label}”角色（{grant.scope or '无范围'}）已被撤销。",
         page="pages/me/index", at=grant.revoked_at, reason=reason)


def tell(user_id: int | None, *, kind: str, subject: str, outcome: str, title: str, body: str,
         page: str | None = None, at: datetime | None = None, reason: str | None = None) -> None:
    """Notice of a decision (`outcome`, a key of OUTCOME_WORDS) about `subject` (e.g.
    "credential:42"); `body` says what was decided, the reason is appended when there is one."""
    if user_id is None:  # an anonymous consumer's feedback: nobody to tell
        return
    at = at or utcnow()
    text = f"{body}原因：{reason}" if reason else body
    enqueue([Reminder(
        user_id=user_id, kind=kind, subject=subject, period=f"{outcome}@{at:%Y%m%dT%H%M%S%f}",
        title=title, body=text, template_key=TEMPLATE, page=page,
        wx_data={"thing1": clip(title, 20), "phrase2": OUTCOME_WORDS.get(outcome, "有结果"),
                 "thing3": clip(reason or body, 20), "time4": f"{to_local(at):%Y-%m-%d %H:%M}"},
    )], at)
