"""The console's review queues (待办): what each queue lists and how a decision is taken.

Lists: pending items in the caller's scope, oldest first, with the scope conditions the API's
own lists use (app.worklists.markets.markets_covered for the market queues,
app.reports.queries.handler_scope for rider reports; memberships and leave requests follow
app.identity.auth.grant_covers over the organisation tree). Decisions: each goes through the
feature's service, which checks role and scope on the object again, exactly as for the API.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import false, func, or_, select, true

from app.activities.models import Activity, LeaveRequest
from app.core.errors import APIError, register_codes
from app.core.regions import code_prefix
from app.core.time import to_local
from app.credentials.models import CREDENTIAL_KINDS, Credential
from app.extensions import db
from app.identity import people
from app.identity.auth import has_role
from app.markets.models import Feedback, Market, Merchant, Stall, StallClaim
from app.orgs.models import MEMBER_STANDINGS, Membership, PartyOrg
from app.pledges.models import Pledge
from app.worklists.markets import markets_covered

register_codes({"CONSOLE_CLAIM_NOT_FOUND": (404, "认领申请不存在")})

PER_PAGE = 30
MAX_ORG_DEPTH = 12  # as app.orgs.services.MAX_DEPTH: a bad parent row cannot loop forever


@dataclass(frozen=True)
class Queue:
    key: str
    title: str
    blurb: str
    roles: tuple[str, ...]  # who works this queue (admin always)
    model: type
    pending: Callable[[Any], Any]  # actor -> Select of pending rows, oldest first (first entity = model)
    row: Callable[[Any], dict]  # a result row -> what the page shows
    decide: Callable[[Any, int, str, str | None], Any]  # (actor, id, approve|reject, reason)
    statuses: dict[str, str]  # status -> label ("已由他人处理：<label>")
    conflicts: tuple[str, ...]  # the service's 409 codes: someone decided first
    not_found: str  # the object's 404 code (an outsider learns nothing)
    approve_label: str = "批准"
    reject_label: str = "驳回"
    reason_label: str = "驳回原因"
    bulk: bool = True

    def applies_to(self, user) -> bool:
        return has_role(user, *self.roles)

    def count(self, actor) -> int:
        if not self.applies_to(actor):
            return 0
        stmt = self.pending(actor).order_by(None)
        return db.session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()

    def page(self, actor, page: int) -> dict:
        stmt = self.pending(actor)
        total = db.session.execute(select(func.count()).select_from(stmt.order_by(None).subquery())).scalar_one()
        rows = db.session.execute(stmt.limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
        items = [self.row(row) for row in rows]
        people.preload(item.get("person_id") for item in items)
        for item in items:
            item["person"] = people.card(item.get("person_id"))
        pages = max(1, -(-total // PER_PAGE))
        return {"items": items, "total": total, "page": page, "pages": pages}

    def status_label(self, item_id: int) -> str | None:
        record = db.session.get(self.model, item_id)
        if record is None:
            return None
        db.session.refresh(record)
        status = record.status_at() if hasattr(record, "status_at") else record.status
        return self.statuses.get(status, status)


def when(value) -> str:
    return to_local(value).strftime("%Y-%m-%d %H:%M") if value else ""


# -- scope conditions ---------------------------------------------------------------------------
def org_scope(actor, roles: tuple[str, ...]):
    """SQL on PartyOrg: the organisations whose objects `actor` may decide on under `roles`,
    as app.identity.auth.grant_covers reads a grant (a region covers the orgs in it, an org
    grant its own org and every org below it, a market grant the orgs of that market)."""
    conditions = []
    for grant in actor.grants:
        if grant.role == "admin":
            return true()
        if grant.role not in roles:
            continue
        if grant.scope_type == "region":
            conditions.append(PartyOrg.region_code.like(code_prefix(grant.scope_id) + "%"))
        elif grant.scope_type == "org" and grant.scope_id.isdigit():
            conditions.append(PartyOrg.id.in_(org_subtree(int(grant.scope_id))))
        elif grant.scope_type == "market" and grant.scope_id.isdigit():
            conditions.append(PartyOrg.market_id == int(grant.scope_id))
    return or_(*conditions) if conditions else false()


def org_subtree(org_id: int) -> list[int]:
    found, level = [org_id], [org_id]
    for _ in range(MAX_ORG_DEPTH):
        level = [child for child in db.session.scalars(select(PartyOrg.id).where(PartyOrg.parent_id.in_(level)))
                 if child not in found]
        if not level:
            break
        found.extend(level)
    return found


# -- stall claims -------------------------------------------------------------------------------
def _claims_pending(actor):
    return (select(StallClaim, Stall, Merchant, Market).join(Stall, Stall.id == StallClaim.stall_id)
            .join(Merchant, Merchant.id == StallClaim.merchant_id).join(Market, Market.id == Stall.market_id)
            .where(StallClaim.status == "pending", markets_covered(actor))
            .order_by(StallClaim.created_at, StallClaim.id))


def _claim_row(row) -> dict:
    claim, stall, merchant, market = row
    return {"id": claim.id, "heading": f"{market.name} · {stall.number} 号摊位", "submitted_at": when(claim.created_at),
            "person_id": claim.requested_by_id, "person_label": "申请人",
            "facts": [("经营主体", merchant.name), ("类型", merchant.kind), ("统一社会信用代码", merchant.uscc),
                      ("经营者", merchant.operator_name)]}


def _decide_claim(actor, claim_id: int, decision: str, reason: str | None):
    from app.markets.services import manage_stall, review_claim

    claim = db.session.get(StallClaim, claim_id)
    if claim is None:
        raise APIError(code="CONSOLE_CLAIM_NOT_FOUND")
    stall = db.session.get(Stall, claim.stall_id)
    manage_stall(actor, stall.token)  # the scope check first: an outsider learns nothing of the claim
    if claim.status != "pending":
        # The service decides the stall's pending claim: this one was decided meanwhile.
        raise APIError(code="STALL_CLAIM_NOT_PENDING", details={"status": claim.status})
    return review_claim(actor, stall.token, decision, reason)


# -- credentials --------------------------------------------------------------------------------
def _credentials_pending(actor):
    covered = select(Market.id).where(markets_covered(actor))
    holders = select(Stall.merchant_id).where(Stall.market_id.in_(covered), Stall.merchant_id.is_not(None))
    claimants = (select(StallClaim.merchant_id).join(Stall, Stall.id == StallClaim.stall_id)
                 .where(Stall.market_id.in_(covered), StallClaim.status == "pending"))
    return (select(Credential, Merchant).join(Merchant, Merchant.id == Credential.merchant_id)
            .where(Credential.status == "pending", Credential.merchant_id.in_(holders.union(claimants)))
            .order_by(Credential.created_at, Credential.id))


def _credential_row(row) -> dict:
    credential, merchant = row
    valid = "长期有效" if credential.long_term else (
        f"{credential.valid_from or '—'} 至 {credential.valid_until or '—'}")
    return {"id": credential.id, "heading": f"{merchant.name} · {CREDENTIAL_KINDS.get(credential.kind, credential.kind)}",
            "submitted_at": when(credential.created_at), "person_id": credential.submitted_by_id,
            "person_label": "上传人", "photo": True,
            "facts": [("证照编号", credential.number), ("发证机关", credential.issuer), ("有效期", valid),
                      ("统一社会信用代码", merchant.uscc)]}


def _decide_credential(actor, credential_id: int, decision: str, reason: str | None):
    from app.credentials.services import review_credential

    return review_credential(actor, credential_id, decision, reason)


# -- pledges ------------------------------------------------------------------------------------
def _pledges_pending(actor):
    return (select(Pledge, Merchant, Market).join(Merchant, Merchant.id == Pledge.merchant_id)
            .join(Market, Market.id == Pledge.market_id)
            .where(Pledge.status == "pending", markets_covered(actor)).order_by(Pledge.created_at, Pledge.id))


def _pledge_row(row) -> dict:
    pledge, merchant, market = row
    facts = [("市场", market.name), ("承诺书", f"{pledge.title}（第 {pledge.template_version} 版）"),
             ("期限", f"{pledge.term_months} 个月"), ("签署人", pledge.signer_name),
             ("承诺事项", list(pledge.items or []))]
    if pledge.extra_commitments:
        facts.append(("补充承诺", pledge.extra_commitments))
    return {"id": pledge.id, "heading": f"{merchant.name} · 诚信经营承诺", "submitted_at": when(pledge.created_at),
            "person_id": pledge.signed_by_id, "person_label": "提交人", "facts": facts}


def _decide_pledge(actor, pledge_id: int, decision: str, reason: str | None):
    from app.pledges.services import review_pledge

    return review_pledge(actor, pledge_id, decision, reason)


# -- party memberships --------------------------------------------------------------------------
MEMBERSHIP_ROLES = ("branch_secretary", "regulator")  # app.orgs.services.MEMBERSHIP_REVIEWER_ROLES


def _memberships_pending(actor):
    return (select(Membership, PartyOrg).join(PartyOrg, PartyOrg.id == Membership.org_id)
            .where(Membership.status == "pending", org_scope(actor, MEMBERSHIP_ROLES))
            .order_by(Membership.created_at, Membership.id))


def _membership_row(row) -> dict:
    membership, org = row
    facts = [("党组织", org.name), ("党员类别", MEMBER_STANDINGS.get(membership.standing, membership.standing)),
             ("流动党员", "是" if membership.floating else "否")]
    if membership.home_org_name:
        facts.append(("组织关系所在党组织", membership.home_org_name))
    return {"id": membership.id, "heading": f"{org.name} · 党员身份确认", "submitted_at": when(membership.created_at),
            "person_id": membership.user_id, "person_label": "申请人", "facts": facts}


def _decide_membership(actor, membership_id: int, decision: str, reason: str | None):
    from app.orgs.services import review_membership

    return review_membership(actor, membership_id, decision, reason)


# -- activity leave -----------------------------------------------------------------------------
ORGANISER_ROLES = ("branch_secretary", "market_manager", "regulator")  # app.orgs.services.ORGANISER_ROLES


def _leave_pending(actor):
    return (select(LeaveRequest, Activity, PartyOrg).join(Activity, Activity.id == LeaveRequest.activity_id)
            .join(PartyOrg, PartyOrg.id == Activity.org_id)
            .where(LeaveRequest.status == "pending", org_scope(actor, ORGANISER_ROLES))
            .order_by(LeaveRequest.created_at, LeaveRequest.id))


def _leave_row(row) -> dict:
    leave, activity, org = row
    return {"id": leave.id, "heading": f"{activity.title} · 请假", "submitted_at": when(leave.created_at),
            "person_id": leave.user_id, "person_label": "请假人",
            "facts": [("活动时间", f"{when(activity.starts_at)} 至 {when(activity.ends_at)}"), ("组织", org.name),
                      ("请假理由", leave.reason)]}


def _decide_leave(actor, leave_id: int, decision: str, reason: str | None):
    from app.activities.services import review_leave

    return review_leave(actor, leave_id, decision, reason)


# -- consumer feedback --------------------------------------------------------------------------
def _feedback_pending(actor):
    return (select(Feedback, Stall, Market).join(Stall, Stall.id == Feedback.stall_id)
            .join(Market, Market.id == Stall.market_id)
            .where(Feedback.status == "open", markets_covered(actor)).order_by(Feedback.created_at, Feedback.id))


def _feedback_row(row) -> dict:
    feedback, stall, market = row
    return {"id": feedback.id, "heading": f"{market.name} · {stall.number} 号摊位 · {feedback.category}",
            "submitted_at": when(feedback.created_at), "person_id": feedback.user_id, "person_label": "反映人",
            "facts": [("反映内容", feedback.text)]}


def _decide_feedback(actor, feedback_id: int, decision: str, reason: str | None):
    from app.markets.services import review_feedback

    return review_feedback(actor, feedback_id, "uphold" if decision == "approve" else "dismiss", reason)


MARKET_ROLES = ("market_manager", "regulator")

QUEUES: dict[str, Queue] = {queue.key: queue for queue in (
    Queue("claims", "摊位认领", "经营者用小程序扫摊位码认领摊位，确认后方可在亮照页公示证照和承诺。", MARKET_ROLES,
          StallClaim, _claims_pending, _claim_row, _decide_claim,
          {"pending": "待确认", "confirmed": "已确认", "rejected": "已驳回", "released": "已释放"},
          ("STALL_CLAIM_NOT_PENDING",), "CONSOLE_CLAIM_NOT_FOUND", approve_label="确认认领"),
    Queue("credentials", "证照审核", "经营主体上传的营业执照和许可证，核对照片与信息后通过或驳回。", MARKET_ROLES,
          Credential, _credentials_pending, _credential_row, _decide_credential,
          {"pending": "待审核", "verified": "已通过", "rejected": "已驳回", "revoked": "已撤销"},
          ("CREDENTIAL_ALREADY_REVIEWED",), "CREDENTIAL_NOT_FOUND", approve_label="通过"),
    Queue("pledges", "诚信承诺", "经营者签署的诚信经营承诺书，批准后在亮照页公示。", MARKET_ROLES,
          Pledge, _pledges_pending, _pledge_row, _decide_pledge,
          {"pending": "待审核", "approved": "已批准", "active": "已批准（生效中）", "upcoming": "已批准（待生效）",
           "rejected": "已驳回", "revoked": "已撤销", "expired": "已过期"},
          ("PLEDGE_NOT_PENDING",), "PLEDGE_NOT_FOUND"),
    Queue("memberships", "党员身份确认", "经营者、骑手申报的党员身份，由所在党组织或监管人员确认。", MEMBERSHIP_ROLES,
          Membership, _memberships_pending, _membership_row, _decide_membership,
          {"pending": "待确认", "verified": "已确认", "rejected": "未通过"},
          ("MEMBERSHIP_ALREADY_DECIDED",), "MEMBERSHIP_NOT_FOUND", approve_label="确认"),
    Queue("leave", "活动请假", "党员对组织活动的请假申请。", ORGANISER_ROLES,
          LeaveRequest, _leave_pending, _leave_row, _decide_leave,
          {"pending": "待审批", "approved": "已批准", "rejected": "未批准"},
          ("LEAVE_ALREADY_DECIDED",), "LEAVE_NOT_FOUND", reject_label="不批准", reason_label="不批准的原因"),
    Queue("feedback", "消费者反映", "消费者在亮照页反映的摊位问题；属实的将在亮照页公示。", MARKET_ROLES,
          Feedback, _feedback_pending, _feedback_row, _decide_feedback,
          {"open": "待核查", "upheld": "属实（已采纳）", "dismissed": "不予采纳"},
          ("FEEDBACK_ALREADY_REVIEWED",), "FEEDBACK_NOT_FOUND", approve_label="属实，采纳",
          reject_label="不予采纳", reason_label="处理说明", bulk=False),
)}
