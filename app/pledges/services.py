"""Integrity pledges (诚信经营承诺): templates kept by regulators, signing by merchants, review and
revocation by market managers and regulators.

Every transition is a conditional UPDATE (… WHERE status = 'pending'), so two reviewers racing
on one pledge cannot both win, and every transition writes an audit row and bumps the badge
version of the entity's stalls in the same transaction."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import case, exists, func, select
from sqlalchemy.exc import IntegrityError

from app.badge import cache as badge_cache
from app.core.review import compare_and_set, decision_reason
from app.core import audit
from app.identity.auth import Target, authorize
from app.core.db import get_or_404
from app.core.errors import APIError
from app.core.pagination import paginate
from app.core.time import end_of_local_day_utc, local_today, utcnow
from app.extensions import db
from app.markets.models import Market, Merchant, Stall
from app.core.regions import Region, region_covers
from app.markets.services import get_market, market_target
from app.pledges import errors  # noqa: F401  (registers the codes)
from app.identity.people import with_people
from app.reminders import notices
from app.pledges.models import ACTIVE_STATUSES, Pledge, PledgeTemplate, in_force_clause, status_clause
from app.pledges.queries import last_local_day

NATIONAL = "000000"
REVIEWER_ROLES = ("market_manager", "regulator")


# -- templates ---------------------------------------------------------------------------------

def region_chain(code: str) -> list[str]:
    """The region and the ancestors that cover it by the prefix rule, nearest first:
    450403 -> [450403, 450400, 450000]."""
    chain = [code, code[:4] + "00", code[:2] + "0000"]
    return list(dict.fromkeys(c for c in chain if c != NATIONAL))


def template_applies(template: PledgeTemplate, region_code: str) -> bool:
    return template.region_code is None or region_covers(template.region_code, region_code)


def get_template(template_id: int) -> PledgeTemplate:
    return get_or_404(PledgeTemplate, template_id, "PLEDGE_TEMPLATE_NOT_FOUND")


def active_templates_stmt(region_code: str | None = None):
    """Active templates; for a region, those that apply to it, the nearest region's first
    (county, city, province, then national), newest first within a level."""
    stmt = select(PledgeTemplate).where(PledgeTemplate.active.is_(True))
    if region_code is None:
        return stmt.order_by(PledgeTemplate.region_code.is_(None).desc(), PledgeTemplate.region_code,
                             PledgeTemplate.id.desc())
    chain = region_chain(region_code)
    if not chain:  # the national code: templates for the whole country only
        return stmt.where(PledgeTemplate.region_code.is_(None)).order_by(PledgeTemplate.id.desc())
    nearness = case({code: rank for rank, code in enumerate(chain)},
                    value=PledgeTemplate.region_code, else_=len(chain))
    return (stmt.where(PledgeTemplate.region_code.in_(chain) | PledgeTemplate.region_code.is_(None))
            .order_by(nearness, PledgeTemplate.id.desc()))


def list_templates(region_code: str | None, market_id: int | None, page: int, per_page: int) -> dict:
    """Public: so an unknown market id lists nothing, like a market with no templates, rather
    than telling an anonymous caller which ids exist."""
    if market_id is not None:
        market = db.session.get(Market, market_id)
        if market is None:
            return {"items": [], "total": 0, "page": page, "per_page": per_page}
        region_code = market.region_code
    return paginate(active_templates_stmt(region_code), page, per_page)


def nearest_template(region_code: str) -> PledgeTemplate | None:
    """The template a merchant in `region_code` is offered first."""
    return db.session.scalars(active_templates_stmt(region_code).limit(1)).first()


def _template_region(region_code: str | None) -> str | None:
    if region_code in (None, "", NATIONAL):
        return None
    if db.session.get(Region, region_code) is None:
        raise APIError(code="REGION_NOT_FOUND", details={"region_code": region_code})
    return region_code


def _template_state(template: PledgeTemplate) -> dict[str, Any]:
    return {"id": template.id, "family_id": template.family_id, "version": template.version,
            "title": template.title, "items": list(template.items), "term_months": template.term_months,
            "region_code": template.region_code, "active": template.active}


def create_template(actor, data: dict) -> PledgeTemplate:
    """A regulator adds a template for a region in their scope (national ones: administrators)."""
    region_code = _template_region(data.get("region_code"))
    role = authorize(actor, ["regulator"], Target(region_code=region_code))
    template = PledgeTemplate(title=data["title"], items=list(data["items"]),
                              term_months=data.get("term_months") or 12, region_code=region_code,
                              active=True, version=1, created_by_id=actor.id)
    db.session.add(template)
    db.session.flush()
    audit.record("pledge_template.create", "pledge_template", template.id, actor=actor,
                 actor_role=role, after=_template_state(template))
    return template


def _is_in_use(template: PledgeTemplate) -> bool:
    return bool(db.session.scalar(select(exists().where(Pledge.template_id == template.id))))


def _latest_version(family_id: str) -> int:
    return db.session.scalar(select(func.max(PledgeTemplate.version))
                             .where(PledgeTemplate.family_id == family_id))


def update_template(actor, template_id: int, data: dict) -> PledgeTemplate:
    """Edit the newest version of a template. A template that pledges were already signed
    against is not rewritten: the edit becomes version + 1 and the old version is retired, so
    every pledge keeps the exact text it was signed on (its own snapshot, too)."""
    template = get_template(template_id)
    role = authorize(actor, ["regulator"], Target(region_code=template.region_code))
    if template.version < _latest_version(template.family_id):
        raise APIError(code="PLEDGE_TEMPLATE_SUPERSEDED",
                       details={"family_id": template.family_id})
    before = _template_state(template)
    text_changes = {key: data[key] for key in ("title", "items", "term_months")
                    if key in data and data[key] != getattr(template, key)}
    if text_changes and _is_in_use(template):
        new = PledgeTemplate(
            family_id=template.family_id, version=template.version + 1,
            title=text_changes.get("title", template.title),
            items=list(text_changes.get("items", template.items)),
            term_months=text_changes.get("term_months", template.term_months),
            region_code=template.region_code, active=data.get("active", True),
            created_by_id=actor.id)
        template.active = False
        try:
            with db.session.begin_nested():
                db.session.add(new)
                db.session.flush()
        except IntegrityError:
            # Another editor created this version first.
            raise APIError(code="PLEDGE_TEMPLATE_SUPERSEDED", details={"family_id": template.family_id})
        audit.record("pledge_template.new_version", "pledge_template", new.id, actor=actor,
                     actor_role=role, before=before, after=_template_state(new))
        return new
    for key, value in text_changes.items():
        setattr(template, key, list(value) if key == "items" else value)
    if "active" in data:
        template.active = data["active"]
    db.session.flush()
    audit.record("pledge_template.update", "pledge_template", template.id, actor=actor,
                 actor_role=role, before=before, after=_template_state(template))
    return template


# -- signing -----------------------------------------------------------------------------------

def get_merchant(merchant_id: int) -> Merchant:
    return get_or_404(Merchant, merchant_id, "MERCHANT_NOT_FOUND")


def owned_merchant(user, merchant_id: int) -> Merchant:
    merchant = get_merchant(merchant_id)
    if merchant.owner_id != user.id:
        raise APIError(code="PLEDGE_NOT_OWNER")
    return merchant


def markets_held(merchant_id: int) -> list[Market]:
    """Markets where the entity holds a confirmed stall."""
    held = select(Stall.market_id).where(Stall.merchant_id == merchant_id).distinct()
    return list(db.session.scalars(select(Market).where(Market.id.in_(held)).order_by(Market.id)))


def approving_market(merchant_id: int, market_id: int | None) -> Market:
    """The market that reviews the pledge: one where the entity holds a stall, implied when
    there is only one."""
    markets = markets_held(merchant_id)
    if not markets:
        raise APIError(code="PLEDGE_NO_STALL")
    if market_id is None:
        if len(markets) > 1:
            raise APIError(code="PLEDGE_MARKET_REQUIRED", details={
                "markets": [{"id": m.id, "name": m.name} for m in markets]})
        return markets[0]
    for market in markets:
        if market.id == market_id:
            return market
    raise APIError(code="PLEDGE_MARKET_NOT_HELD", details={
        "market_id": market_id, "markets": [{"id": m.id, "name": m.name} for m in markets]})


def signable_template(template_id: int, market: Market) -> PledgeTemplate:
    template = get_template(template_id)
    if not template.active:
        raise APIError(code="PLEDGE_TEMPLATE_INACTIVE", details={"template_id": template.id})
    if not template_applies(template, market.region_code):
        raise APIError(code="PLEDGE_TEMPLATE_NOT_APPLICABLE",
                       details={"template_id": template.id, "market_id": market.id})
    return template


RENEWAL_WINDOW = timedelta(days=30)  # a pledge in force may be renewed this long before it ends


def blocking_pledge(merchant_id: int, now: datetime) -> Pledge | None:
    """What keeps the entity from signing now: a pledge under review, a renewal approved and
    waiting to begin, or a pledge in force that ends more than RENEWAL_WINDOW from now."""
    stored_active = db.session.scalars(select(Pledge).where(
        Pledge.merchant_id == merchant_id, Pledge.status.in_(ACTIVE_STATUSES))).all()
    for pledge in stored_active:
        status = pledge.status_at(now)
        if status in ("pending", "upcoming"):
            return pledge
        if status == "approved" and pledge.valid_until - now > RENEWAL_WINDOW:
            return pledge
    return None


def pledge_in_force(merchant_id: int, now: datetime, other_than: int | None = None) -> Pledge | None:
    return db.session.scalar(select(Pledge).where(
        Pledge.merchant_id == merchant_id, in_force_clause(now), Pledge.id != (other_than or 0)))


def _record_expiries(merchant_id: int, now: datetime, actor) -> None:
    """An approved pledge past its term already reads "expired"; store that before a new
    signature so the one-active-pledge index lets the new pledge in."""
    stale = db.session.scalars(select(Pledge).where(
        Pledge.merchant_id == merchant_id, Pledge.status == "approved",
        Pledge.valid_until <= now)).all()
    for pledge in stale:
        before = {**pledge.snapshot(now), "status": "approved"}
        pledge.status = "expired"
        db.session.flush()
        audit.record("pledge.expire", "pledge", pledge.id, actor=actor, actor_role="system",
                     before=before, after=pledge.snapshot(now), reason="承诺期满自动到期")


def sign_pledge(user, merchant_id: int, data: dict, now: datetime | None = None) -> Pledge:
    """The owner signs the template version for the entity; the approving market's manager
    reviews it. Risky extra commitments are refused before anything is written."""
    now = now or utcnow()
    merchant = owned_merchant(user, merchant_id)
    market = approving_market(merchant.id, data.get("market_id"))
    template = signable_template(data["template_id"], market)
    current = blocking_pledge(merchant.id, now)
    if current is not None:
        details = {"pledge_id": current.id, "status": current.status_at(now)}
        if details["status"] == "approved":  # in force: renewal opens RENEWAL_WINDOW before its end
            details["renewable_from"] = last_local_day(current.valid_until - RENEWAL_WINDOW)
        raise APIError(code="PLEDGE_ALREADY_ACTIVE", details=details)
    extra = (data.get("extra_commitments") or "").strip() or None  # content-checked at flush

    _record_expiries(merchant.id, now, user)
    pledge = Pledge(merchant_id=merchant.id, market_id=market.id, template_id=template.id,
                    template_version=template.version, title=template.title,
                    items=list(template.items), term_months=template.term_months,
                    extra_commitments=extra, signer_name=data["signer_name"].strip(),
                    signed_by_id=user.id, status="pending", created_at=now, updated_at=now)
    try:
        with db.session.begin_nested():
            db.session.add(pledge)
            db.session.flush()
    except IntegrityError:
        # A concurrent submission for the same entity committed first.
        raise APIError(code="PLEDGE_ALREADY_ACTIVE", details={"status": "pending"})
    audit.record("pledge.sign", "pledge", pledge.id, actor=user, actor_role="merchant",
                 after={**pledge.snapshot(now), "market_id": market.id,
                        "template_id": template.id, "template_version": template.version})
    badge_cache.changed(merchant_id=merchant.id)
    return pledge


# -- review and revocation ----------------------------------------------------------------------

def get_pledge(pledge_id: int) -> Pledge:
    return get_or_404(Pledge, pledge_id, "PLEDGE_NOT_FOUND")


def pledge_target(pledge: Pledge) -> Target:
    return market_target(pledge.market)


def term_end(approved_at: datetime, term_months: int) -> datetime:
    """In force through the whole local day `term_months` after approval (approved 2026-03-01
    for 12 months: valid until the end of 2027-03-01, Asia/Shanghai)."""
    return end_of_local_day_utc(local_today(approved_at) + relativedelta(months=term_months))


def _required_reason(reason: str | None) -> str:
    return decision_reason("revoke", reason, required=True)


def _transition(pledge: Pledge, condition, values: dict[str, Any], refusal: str, now: datetime) -> None:
    compare_and_set(pledge, condition, {"updated_at": now, **values}, refusal)


def review_pledge(actor, pledge_id: int, decision: str, reason: str | None,
                  now: datetime | None = None) -> Pledge:
    """Approve (in force from now for the template's term) or reject (reason required)."""
    now = now or utcnow()
    pledge = get_pledge(pledge_id)
    role = authorize(actor, REVIEWER_ROLES, pledge_target(pledge))
    before = pledge.snapshot(now)
    if decision == "reject":
        reason = _required_reason(reason)
        values = {"status": "rejected"}
    else:
        reason = (reason or "").strip() or None
        # A renewal begins when the pledge in force ends: no dark day between them.
        current = pledge_in_force(pledge.merchant_id, now, other_than=pledge.id)
        starts = max(now, current.valid_until) if current is not None else now
        values = {"status": "approved", "valid_from": starts, "valid_until": term_end(starts, pledge.term_months)}
    _transition(pledge, Pledge.status == "pending",
                {**values, "reviewed_at": now, "reviewed_by_id": actor.id, "review_reason": reason},
                "PLEDGE_NOT_PENDING", now)
    audit.record(f"pledge.{'approve' if decision == 'approve' else 'reject'}", "pledge", pledge.id,
                 actor=actor, actor_role=role, before=before, after=pledge.snapshot(now), reason=reason)
    badge_cache.changed(merchant_id=pledge.merchant_id)
    _tell_signer(pledge, "approved" if decision == "approve" else "rejected", now, reason)
    return pledge


def _tell_signer(pledge: Pledge, outcome: str, at: datetime, reason: str | None) -> None:
    upcoming = pledge.valid_from is not None and pledge.valid_from > at
    verdict = {"approved": (f"（续签）已通过审核，将在当前承诺到期时接续生效，有效期至 {last_local_day(pledge.valid_until)}，"
                            f"“诚信承诺”标识不会中断。" if upcoming else
                            f"已通过审核，有效期至 {last_local_day(pledge.valid_until)}，亮照页显示“诚信承诺”。")
               if pledge.valid_until else "已通过审核。",
               "rejected": "未通过审核，请修改后重新签署。", "revoked": "已被撤销，亮照页不再显示“诚信承诺”。"}[outcome]
    notices.tell(pledge.merchant.owner_id, kind="pledge_decision", subject=f"pledge:{pledge.id}", outcome=outcome,
                 title="诚信承诺审核结果", body=f"{pledge.merchant.name}的诚信经营承诺{verdict}",
                 page=f"pages/merchant/pledge?id={pledge.id}", at=at,
                 reason=reason if outcome != "approved" else None)


def revoke_pledge(actor, pledge_id: int, reason: str | None, now: datetime | None = None) -> Pledge:
    """Take a pledge in force off (e.g. after an upheld complaint); the badge turns off at once."""
    now = now or utcnow()
    pledge = get_pledge(pledge_id)
    role = authorize(actor, REVIEWER_ROLES, pledge_target(pledge))
    reason = _required_reason(reason)
    before = pledge.snapshot(now)
    _transition(pledge, status_clause("approved", now),
                {"status": "revoked", "revoked_at": now, "revoked_by_id": actor.id,
                 "revoke_reason": reason},
                "PLEDGE_NOT_IN_FORCE", now)
    audit.record("pledge.revoke", "pledge", pledge.id, actor=actor, actor_role=role,
                 before=before, after=pledge.snapshot(now), reason=reason)
    badge_cache.changed(merchant_id=pledge.merchant_id)
    _tell_signer(pledge, "revoked", now, reason)
    return pledge


# -- reading -------------------------------------------------------------------------------------

def view_pledge(user, pledge_id: int) -> Pledge:
    """The signer's entity owner, or a reviewer of its market."""
    pledge = get_pledge(pledge_id)
    if pledge.merchant.owner_id != user.id:
        authorize(user, REVIEWER_ROLES, pledge_target(pledge))
    return pledge


def market_pledges_stmt(market_id: int, status: str | None, now: datetime):
    stmt = select(Pledge).where(Pledge.market_id == market_id)
    if status:
        stmt = stmt.where(status_clause(status, now))
    return stmt.order_by(Pledge.created_at, Pledge.id)


def list_market_pledges(actor, market_id: int, status: str | None, page: int, per_page: int,
                        now: datetime | None = None) -> dict:
    """The review queue of a market, oldest first."""
    market = get_market(market_id)
    authorize(actor, REVIEWER_ROLES, market_target(market))
    return with_people(paginate(market_pledges_stmt(market.id, status, now or utcnow()), page, per_page),
                       "signed_by_id")


def list_merchant_pledges(user, merchant_id: int, page: int, per_page: int) -> dict:
    """The entity's pledge history for its owner, newest first."""
    merchant = owned_merchant(user, merchant_id)
    stmt = (select(Pledge).where(Pledge.merchant_id == merchant.id)
            .order_by(Pledge.created_at.desc(), Pledge.id.desc()))
    return paginate(stmt, page, per_page)
