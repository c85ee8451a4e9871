"""Markets, stalls, business entities, stall claims and consumer feedback.

Services flush, never commit (the request commits); each review, reissue and decision is audited."""
from __future__ import annotations

import re

from sqlalchemy import func, insert, select

from app.core import ratelimit
from app.core.review import compare_and_set, decide, decision_reason
from app.core import audit, edits
from app.identity.auth import Target, authorize, has_role, register_scope_target
from app.core.db import get_or_404, insert_ignore
from app.core.errors import APIError, NotFound
from app.core.ids import base62_token, typed_int
from app.core.time import utcnow
from app.extensions import db
from app.badge import cache as badge_cache
from app.markets import errors as _errors  # noqa: F401  registers this feature's codes
from app.identity import people
from app.reminders import notices
from app.markets.models import (Feedback, Market, Merchant, Stall, StallClaim, VoidedStallToken)
from app.core.regions import Region
from app.markets.uscc import is_valid_uscc, normalize

MAX_STALLS_PER_CALL = 500
# A stall number (one rule for the API's schemas, the bulk import and renumbering): 1–32
# characters, no leading blank, no control characters.
STALL_NUMBER_MAX = 32
STALL_NUMBER_PATTERN = r"^[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
STALL_NUMBER_PATTERN_ERROR = "摊位号不能以空白开头或含控制字符"
STALL_NOTE_MAX = 500
TOKEN_LENGTH = 12  # base62: ~71 bits, well above the 59-bit floor, and far below the 32-char scene
MANAGING_ROLES = ("market_manager", "regulator")
FEEDBACK_PER_HOUR = 5


# -- markets -------------------------------------------------------------------------------------
def market_target(market: Market) -> Target:
    return Target(region_code=market.region_code, market_id=market.id)


def _market_scope(market_id: str) -> Target | None:
    number = typed_int(market_id)
    market = db.session.get(Market, number) if number is not None else None
    return market_target(market) if market is not None else None


register_scope_target("market", _market_scope)


def get_market(market_id: int) -> Market:
    return get_or_404(Market, market_id, "MARKET_NOT_FOUND")


def create_market(actor, data: dict) -> Market:
    region = db.session.get(Region, data["region_code"])
    if region is None:
        raise APIError(code="REGION_NOT_FOUND", details={"region_code": data["region_code"]})
    role = authorize(actor, ["regulator"], Target(region_code=region.code))
    market = Market(created_by_id=actor.id, **data)
    db.session.add(market)
    db.session.flush()
    audit.record("market.create", "market", market.id, actor=actor, actor_role=role,
                 after={"name": market.name, "region_code": market.region_code})
    return market


def update_market(actor, market_id: int, changes: dict) -> Market:
    """A regulator of its region renames, re-addresses, closes or reopens a market; audited."""
    market = get_market(market_id)
    role = authorize(actor, ["regulator"], market_target(market))
    before, after = edits.apply(market, changes)
    if after:
        db.session.flush()
        if "name" in after:
            badge_cache.changed(market_id=market.id)  # the market's name is on each of its badges
        audit.record("market.update", "market", market.id, actor=actor, actor_role=role, before=before, after=after)
    return market


def view_market(actor, market_id: int) -> Market:
    market = get_market(market_id)
    authorize(actor, MANAGING_ROLES, market_target(market))
    return market


def manage_market(actor, market_id: int) -> tuple[Market, str]:
    """The market and the role under which `actor` manages it (its manager or a regulator of
    its region)."""
    market = get_market(market_id)
    return market, authorize(actor, MANAGING_ROLES, market_target(market))


# -- stalls --------------------------------------------------------------------------------------
def new_stall_token() -> str:
    return base62_token(TOKEN_LENGTH)


def _fresh_tokens(count: int) -> list[str]:
    """`count` tokens that are neither live nor voided (a collision at 71 bits is astronomically
    unlikely; the unique constraint would still refuse it)."""
    tokens: set[str] = set()
    while len(tokens) < count:
        wanted = {new_stall_token() for _ in range(count - len(tokens))}
        taken = set(db.session.scalars(select(Stall.token).where(Stall.token.in_(wanted))))
        taken |= set(db.session.scalars(select(VoidedStallToken.token).where(VoidedStallToken.token.in_(wanted))))
        tokens |= wanted - taken
    return list(tokens)


def create_stalls(actor, market_id: int, numbers: list[str]) -> list[Stall]:
    """All or nothing: duplicates in the request (422) or numbers the market already has (409)
    are reported by number and nothing is created."""
    market, role = manage_market(actor, market_id)
    cleaned = [number.strip() for number in numbers]
    if len(cleaned) > MAX_STALLS_PER_CALL:
        raise APIError(code="TOO_MANY_STALLS", details={"max": MAX_STALLS_PER_CALL})
    seen, duplicates = set(), []
    for number in cleaned:
        if number in seen and number not in duplicates:
            duplicates.append(number)
        seen.add(number)
    if duplicates:
        raise APIError(code="STALL_NUMBER_DUPLICATE", details={"numbers": duplicates})
    existing = existing_stall_numbers(market.id, cleaned)
    if existing:
        raise APIError(code="STALL_NUMBER_EXISTS", details={"numbers": sorted(existing)})
    add_stalls(actor, role, market, [(number, None) for number in cleaned])
    return list(db.session.scalars(select(Stall).where(
        Stall.market_id == market.id, Stall.number.in_(cleaned)).order_by(Stall.id)))


def stall_number_problem(number: str) -> str | None:
    """Why `number` (already trimmed) cannot be a stall number, in Chinese; None when it can."""
    if not number:
        return "摊位号为空"
    if len(number) > STALL_NUMBER_MAX:
        return f"摊位号超过 {STALL_NUMBER_MAX} 个字符"
    if not re.match(STALL_NUMBER_PATTERN, number):
        return STALL_NUMBER_PATTERN_ERROR
    return None


def existing_stall_numbers(market_id: int, numbers: list[str]) -> set[str]:
    if not numbers:
        return set()
    return set(db.session.scalars(select(Stall.number).where(Stall.market_id == market_id,
                                                             Stall.number.in_(numbers))))


def add_stalls(actor, role: str, market: Market, entries: list[tuple[str, str | None]]) -> int:
    """Insert new stalls (number, note) with fresh tokens, audited; the caller has checked the
    numbers (stall_number_problem, none already in the market, none twice). Used by the
    POST …/stalls call and by the bulk import job."""
    if not entries:
        return 0
    now = utcnow()
    tokens = _fresh_tokens(len(entries))
    rows = [{"market_id": market.id, "number": number, "note": note, "token": token, "badge_version": 1,
             "token_issued_at": now, "created_at": now, "updated_at": now}
            for (number, note), token in zip(entries, tokens)]
    db.session.execute(insert(Stall), rows)
    audit.record("stall.create_bulk", "market", market.id, actor=actor, actor_role=role,
                 after={"count": len(rows), "numbers": [number for number, _ in entries[:50]]},
                 region_code=market.region_code)
    return len(rows)


def list_stalls(actor, market_id: int, page: int, per_page: int, conditions=()) -> dict:
    """A market's stalls by number, narrowed by SQL `conditions` on Stall (app.worklists builds
    the filters that need other features' tables)."""
    from app.core.pagination import paginate

    market, _ = manage_market(actor, market_id)
    stmt = select(Stall).where(Stall.market_id == market.id, *conditions).order_by(Stall.number, Stall.id)
    result = paginate(stmt, page, per_page)
    stall_ids = [stall.id for stall in result["items"]]
    pending = {claim.stall_id: claim for claim in db.session.scalars(select(StallClaim).where(
        StallClaim.stall_id.in_(stall_ids), StallClaim.status == "pending"))} if stall_ids else {}
    merchant_ids = {s.merchant_id for s in result["items"] if s.merchant_id}
    merchants = {m.id: m for m in db.session.scalars(select(Merchant).where(
        Merchant.id.in_(merchant_ids)))} if merchant_ids else {}
    people.preload(claim.requested_by_id for claim in pending.values())
    result["items"] = [stall_summary(stall, merchants.get(stall.merchant_id), pending.get(stall.id))
                       for stall in result["items"]]
    return result


def stall_summary(stall: Stall, merchant: Merchant | None, pending: StallClaim | None) -> dict:
    badge = badge_cache.badge_dict(stall.token)
    if merchant is not None:
        claim_status = "confirmed"
    elif pending is not None:
        claim_status = "pending"
    else:
        claim_status = "unclaimed"
    return {
        "id": stall.id, "number": stall.number, "token": stall.token, "market_id": stall.market_id,
        "claim_status": claim_status,
        "merchant": {"id": merchant.id, "name": merchant.name} if merchant else None,
        "pending_claim": {"id": pending.id, "merchant_id": pending.merchant_id,
                          "requested_by_id": pending.requested_by_id,
                          "created_at": pending.created_at} if pending else None,
        "badge": {"verdict": badge["verdict"], "version": stall.badge_version,
                  "reasons": badge["reasons"]},
    }


def stall_by_token(token: str, for_update: bool = False) -> Stall:
    """The live stall of a sticker token: 410 STALL_TOKEN_VOID for a reissued one, else 404."""
    stmt = select(Stall).where(Stall.token == token)
    if for_update:
        stmt = stmt.with_for_update(of=Stall)
    stall = db.session.scalar(stmt)
    if stall is not None:
        return stall
    if len(token) <= 32 and db.session.get(VoidedStallToken, token) is not None:
        raise APIError(code="STALL_TOKEN_VOID")
    raise NotFound(code="STALL_NOT_FOUND")


def manage_stall(actor, token: str, for_update: bool = False) -> tuple[Stall, str]:
    stall = stall_by_token(token, for_update)
    return stall, authorize(actor, MANAGING_ROLES, market_target(stall.market))


def update_stall(actor, token: str, changes: dict) -> Stall:
    """The market's manager (or a regulator) renumbers a stall, keeps a note on it, or closes
    and reopens it; audited. A closed stall keeps its tenancy and sticker."""
    stall, role = manage_stall(actor, token, for_update=True)
    number = changes.get("number")
    if number is not None and number != stall.number and db.session.scalar(select(Stall.id).where(
            Stall.market_id == stall.market_id, Stall.number == number)) is not None:
        raise APIError(code="STALL_NUMBER_EXISTS", details={"numbers": [number]})
    before, after = edits.apply(stall, changes)
    if after:
        db.session.flush()
        badge_cache.changed(stall_id=stall.id)
        audit.record("stall.update", "stall", stall.id, actor=actor, actor_role=role, before=before, after=after)
    return stall


def reissue_token(actor, token: str) -> Stall:
    """New sticker token; the old one is kept as void so its page can say so (audited)."""
    stall, role = manage_stall(actor, token, for_update=True)
    old = stall.token
    db.session.add(VoidedStallToken(token=old, stall_id=stall.id, voided_at=utcnow(),
                                    voided_by_id=actor.id))
    stall.token = _fresh_tokens(1)[0]
    stall.token_issued_at = utcnow()
    db.session.flush()
    badge_cache.changed(stall_id=stall.id)
    badge_cache.forget_tokens([old])
    audit.record("stall.reissue_token", "stall", stall.id, actor=actor, actor_role=role,
                 before={"token": old}, after={"token_prefix": stall.token[:4]})
    db.session.refresh(stall)
    return stall


def set_trading_rules(actor, token: str, rules: dict) -> Stall:
    """亮规则: the holder of the stall (or its manager) states returns, pricing and weighing rules."""
    stall = stall_by_token(token)
    merchant = db.session.get(Merchant, stall.merchant_id) if stall.merchant_id else None
    if merchant is None or merchant.owner_id != actor.id:
        authorize(actor, MANAGING_ROLES, market_target(stall.market))
    stall.trading_rules = {k: v for k, v in rules.items() if v} or None
    db.session.flush()
    badge_cache.changed(stall_id=stall.id)
    return stall


# -- business entities (经营主体) -----------------------------------------------------------------
def create_merchant(actor, data: dict) -> Merchant:
    from app.identity.services import ensure_self_service_role

    uscc = normalize(data["uscc"])
    if not is_valid_uscc(uscc):
        raise APIError(code="USCC_INVALID", details={"field": "uscc"})
    mine = db.session.scalar(select(Merchant).where(Merchant.owner_id == actor.id, Merchant.uscc == uscc))
    if mine is not None:
        raise APIError(code="MERCHANT_EXISTS", details={"merchant_id": mine.id})
    merchant = Merchant(owner_id=actor.id, name=data["name"].strip(), kind=data["kind"], uscc=uscc,
                        operator_name=data["operator_name"].strip())
    db.session.add(merchant)
    db.session.flush()
    ensure_self_service_role(actor, "merchant")
    audit.record("merchant.create", "merchant", merchant.id, actor=actor, actor_role="merchant",
                 after={"name": merchant.name, "uscc": uscc})
    return merchant


def list_my_merchants(actor) -> list[Merchant]:
    return list(db.session.scalars(select(Merchant).where(Merchant.owner_id == actor.id).order_by(Merchant.id)))


def owned_merchant(actor, merchant_id: int) -> Merchant:
    """The entity if `actor` owns it; 404 otherwise, so another merchant learns nothing."""
    merchant = db.session.get(Merchant, merchant_id)
    if merchant is None or merchant.owner_id != actor.id:
        raise NotFound(code="MERCHANT_NOT_FOUND")
    return merchant


def merchant_markets(merchant_id: int, include_pending: bool = True) -> list[Market]:
    """Markets where the entity holds a stall (confirmed claims, and pending ones if asked)."""
    held = select(Stall.market_id).where(Stall.merchant_id == merchant_id)
    if include_pending:
        held = held.union(select(Stall.market_id).join(StallClaim, StallClaim.stall_id == Stall.id).where(
            StallClaim.merchant_id == merchant_id, StallClaim.status == "pending"))
    return list(db.session.scalars(select(Market).where(Market.id.in_(held)).order_by(Market.id)))


def authorize_over_merchant(actor, merchant: Merchant, include_pending: bool = True) -> str:
    """A manager or regulator covering a market where the entity holds a stall. Someone with
    neither role gets 404 (nothing leaks); one with the role but not the scope gets 403."""
    if not has_role(actor, *MANAGING_ROLES):
        raise NotFound(code="MERCHANT_NOT_FOUND")
    markets = merchant_markets(merchant.id, include_pending)
    for market in markets:
        try:
            return authorize(actor, MANAGING_ROLES, market_target(market))
        except APIError:
            continue
    if has_role(actor, "admin"):
        return "admin"
    raise APIError(code="OUT_OF_SCOPE")


def view_merchant(actor, merchant_id: int) -> Merchant:
    merchant = db.session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound(code="MERCHANT_NOT_FOUND")
    if merchant.owner_id != actor.id:
        authorize_over_merchant(actor, merchant)
    return merchant


def merchant_stalls(merchant_id: int) -> list[dict]:
    rows = db.session.execute(
        select(Stall, StallClaim.status).join(StallClaim, StallClaim.stall_id == Stall.id)
        .where(StallClaim.merchant_id == merchant_id, StallClaim.active_stall_id.is_not(None))
        .order_by(Stall.id)).all()
    return [{"token": stall.token, "number": stall.number, "market_id": stall.market_id,
             "market_name": stall.market.name, "claim_status": status} for stall, status in rows]


# -- stall claims (摊位认领) -----------------------------------------------------------------------
def claim_stall(actor, token: str, merchant_id: int) -> StallClaim:
    merchant = owned_merchant(actor, merchant_id)
    stall = stall_by_token(token)
    active = db.session.scalar(select(StallClaim).where(StallClaim.active_stall_id == stall.id))
    if active is not None:
        if active.merchant_id == merchant.id:
            return active  # a retried claim of the same stall by the same entity
        raise _claim_conflict(active)
    now = utcnow()
    inserted = insert_ignore(StallClaim, {
        "stall_id": stall.id, "merchant_id": merchant.id, "active_stall_id": stall.id,
        "status": "pending", "requested_by_id": actor.id, "created_at": now, "updated_at": now,
    }, ["active_stall_id"])
    claim = db.session.scalar(select(StallClaim).where(StallClaim.active_stall_id == stall.id))
    if not inserted and claim.merchant_id != merchant.id:
        raise _claim_conflict(claim)  # lost the race to another entity
    badge_cache.changed(stall_id=stall.id)
    return claim


def release_stall(actor, token: str, reason: str) -> StallClaim:
    """End a tenancy (退租、转让): by the entity's owner or the market's manager or regulator.
    The stall goes back to unclaimed (its badge says it has no operator) and a new tenant may
    claim it; the other side is told; audited. A second release is 409."""
    stall = stall_by_token(token, for_update=True)
    claim = db.session.scalar(select(StallClaim).where(
        StallClaim.active_stall_id == stall.id, StallClaim.status == "confirmed"))
    if claim is None:
        raise APIError(code="STALL_NOT_HELD")
    merchant = db.session.get(Merchant, claim.merchant_id)
    role = "merchant" if merchant.owner_id == actor.id else authorize(actor, MANAGING_ROLES, market_target(stall.market))
    reason = decision_reason("revoke", reason, required=True)
    now = utcnow()
    compare_and_set(claim, "confirmed", {"status": "released", "active_stall_id": None, "released_at": now,
                                         "released_by_id": actor.id, "release_reason": reason}, "STALL_NOT_HELD")
    stall.merchant_id = None
    db.session.flush()
    badge_cache.changed(stall_id=stall.id)
    audit.record("stall.release", "stall", stall.id, actor=actor, actor_role=role,
                 before={"merchant_id": merchant.id, "claim_id": claim.id}, after={"merchant_id": None}, reason=reason)
    if role != "merchant":
        notices.tell(merchant.owner_id, kind="stall_released", subject=f"stall_claim:{claim.id}", outcome="released",
                     title="摊位经营关系已解除",
                     body=f"{stall.market.name} {stall.number} 号摊位与{merchant.name}的经营关系已由市场解除，"
                          f"亮照页不再显示您的证照和承诺。", page="pages/merchant/index", at=now, reason=reason)
    return claim


def _claim_conflict(active: StallClaim) -> APIError:
    code = "STALL_CLAIM_PENDING" if active.status == "pending" else "STALL_ALREADY_CLAIMED"
    return APIError(code=code)


def review_claim(actor, token: str, decision: str, reason: str | None) -> StallClaim:
    stall, role = manage_stall(actor, token, for_update=True)
    claim = db.session.scalar(select(StallClaim).where(
        StallClaim.active_stall_id == stall.id, StallClaim.status == "pending"))
    if claim is None:
        raise APIError(code="STALL_CLAIM_NOT_PENDING")
    reason = decision_reason(decision, reason)
    before = {"status": claim.status, "merchant_id": claim.merchant_id}
    if decision == "approve":
        decide(claim, actor, "pending", "confirmed", reason, "STALL_CLAIM_NOT_PENDING")
        stall.merchant_id = claim.merchant_id
    else:
        decide(claim, actor, "pending", "rejected", reason, "STALL_CLAIM_NOT_PENDING", active_stall_id=None)
    db.session.flush()
    badge_cache.changed(stall_id=stall.id)
    audit.record(f"stall_claim.{decision}", "stall_claim", claim.id, actor=actor, actor_role=role,
                 before=before, after={"status": claim.status, "stall_id": stall.id}, reason=reason)
    merchant = db.session.get(Merchant, claim.merchant_id)
    verdict = "已确认，可以在亮照页公示证照和承诺了。" if claim.status == "confirmed" else "未通过确认。"
    notices.tell(merchant.owner_id, kind="claim_decision", subject=f"stall_claim:{claim.id}",
                 outcome="approved" if claim.status == "confirmed" else "rejected", title="摊位认领结果",
                 body=f"{stall.market.name} {stall.number} 号摊位的认领（{merchant.name}）{verdict}",
                 page=f"pages/stall/index?token={stall.token}", at=claim.reviewed_at,
                 reason=reason if claim.status != "confirmed" else None)
    return claim


# -- feedback (反映问题) ---------------------------------------------------------------------------
def submit_feedback(actor, token: str, category: str, text: str) -> Feedback:
    stall = stall_by_token(token)
    ratelimit.enforce("feedback", str(actor.id), FEEDBACK_PER_HOUR, 3600, code="FEEDBACK_RATE_LIMITED")
    feedback = Feedback(stall_id=stall.id, user_id=actor.id, category=category, text=text.strip(),
                        status="open", created_at=utcnow())
    db.session.add(feedback)
    db.session.flush()
    return feedback


def list_feedback(actor, market_id: int, status: str | None, page: int, per_page: int) -> dict:
    from app.core.pagination import paginate

    market, _ = manage_market(actor, market_id)
    stmt = (select(Feedback, Stall.number).join(Stall, Stall.id == Feedback.stall_id)
            .where(Stall.market_id == market.id).order_by(Feedback.created_at.desc(), Feedback.id.desc()))
    if status:
        stmt = stmt.where(Feedback.status == status)
    result = paginate(stmt, page, per_page, scalars=False)
    result["items"] = [_feedback_item(feedback, number) for feedback, number in result["items"]]
    return result


def _feedback_item(feedback: Feedback, stall_number: str) -> dict:
    return {"id": feedback.id, "stall_number": stall_number, "category": feedback.category,
            "text": feedback.text, "status": feedback.status, "created_at": feedback.created_at,
            "reviewed_at": feedback.reviewed_at, "review_reason": feedback.review_reason}


def review_feedback(actor, feedback_id: int, decision: str, reason: str | None) -> dict:
    feedback = db.session.get(Feedback, feedback_id)
    if feedback is None:
        raise NotFound(code="FEEDBACK_NOT_FOUND")
    stall = db.session.get(Stall, feedback.stall_id)
    role = authorize(actor, MANAGING_ROLES, market_target(stall.market))
    reason = decision_reason(decision, reason)
    decide(feedback, actor, "open", "upheld" if decision == "uphold" else "dismissed", reason,
           "FEEDBACK_ALREADY_REVIEWED")
    badge_cache.changed(stall_id=stall.id)
    audit.record(f"feedback.{decision}", "feedback", feedback.id, actor=actor, actor_role=role,
                 before={"status": "open"}, after={"status": feedback.status}, reason=reason)
    verdict = ("经核实属实，已在该摊位的亮照页公示，市场将督促整改。" if feedback.status == "upheld"
               else "经核查未予采纳。")
    notices.tell(feedback.user_id, kind="feedback_decision", subject=f"feedback:{feedback.id}",
                 outcome=feedback.status, title="您反映的问题有处理结果",
                 body=f"您对 {stall.market.name} {stall.number} 号摊位反映的问题{verdict}",
                 page=f"pages/stall/index?token={stall.token}", at=feedback.reviewed_at, reason=reason)
    return _feedback_item(feedback, stall.number)


def count_feedback(stall_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(Feedback).where(Feedback.stall_id == stall_id))
