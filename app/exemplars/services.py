"""典型选树: regulators set their region's criteria, read the candidates computed from the
records, confer a title for a year (refused, with the failing criteria, when the object does not
meet them now) and withdraw it. Every change is audited; a stall's title change moves its badge
version in the same transaction, a market's moves its public page's. Whoever holds the title is
told of its conferral and withdrawal in that transaction too (the stall's business entity's
owner; a market's managers)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.badge import cache as badge_cache
from app.core import audit
from app.core.db import get_or_404
from app.core.errors import APIError
from app.core.ids import typed_int
from app.core.pagination import paginate
from app.core.regions import Region, code_prefix
from app.core.review import decision_reason
from app.core.time import local_midnight_utc, local_today, utcnow
from app.exemplars import errors  # noqa: F401  (registers the codes)
from app.exemplars import queries
from app.exemplars.criteria import FIELDS, effective
from app.exemplars.models import MARKET_TITLE, STALL_TITLES, ExemplarCriteria, ExemplarTitle
from app.extensions import db
from app.identity.auth import Target, authorize
from app.markets.models import Market, Merchant, Stall
from app.reminders import notices

ROLES = ("regulator",)
TERM = relativedelta(years=1)


def _region(region_code: str) -> Region:
    region = db.session.get(Region, region_code)
    if region is None:
        raise APIError(code="REGION_NOT_FOUND", details={"region_code": region_code})
    return region


def _criteria_view(region_code: str) -> dict[str, Any]:
    criteria = effective(region_code)
    return {"region": region_code, "source_region": criteria.source_region,
            "is_default": criteria.source_region is None, "stall": criteria.stall(), "market": criteria.market(),
            "stall_criteria": queries.stall_labels(criteria), "market_criteria": queries.market_labels(criteria)}


# -- criteria ------------------------------------------------------------------------------------
def get_criteria(actor, region_code: str) -> dict[str, Any]:
    _region(region_code)
    authorize(actor, ROLES, Target(region_code=region_code))
    return _criteria_view(region_code)


_STALL_FIELDS = {"require_credentials": "require_credentials", "pledge_days": "pledge_days",
                 "no_upheld": "no_upheld", "require_party_member": "require_party_member"}
_MARKET_FIELDS = {"full_badge_pct": "market_full_badge_pct", "pledge_pct": "market_pledge_pct",
                  "require_party_org": "market_require_party_org", "min_stalls": "market_min_stalls"}


def set_criteria(actor, data: dict[str, Any]) -> dict[str, Any]:
    """The region's own criteria (what is not sent keeps the value that applied so far: its own,
    the nearest region's above, or the defaults)."""
    region_code = data["region"]
    _region(region_code)
    role = authorize(actor, ROLES, Target(region_code=region_code))
    row = db.session.get(ExemplarCriteria, region_code)
    inherited = effective(region_code)
    before = {name: getattr(row, name) for name in FIELDS} if row is not None else None
    if row is None:
        row = ExemplarCriteria(region_code=region_code, **{name: getattr(inherited, name) for name in FIELDS})
        db.session.add(row)
    for fields, part in ((_STALL_FIELDS, data.get("stall") or {}), (_MARKET_FIELDS, data.get("market") or {})):
        for key, column in fields.items():
            if key in part:
                setattr(row, column, part[key])
    row.updated_by_id = actor.id
    db.session.flush()
    after = {name: getattr(row, name) for name in FIELDS}
    audit.record("exemplar.criteria", "region", region_code, actor=actor, actor_role=role, before=before,
                 after=after, region_code=region_code)
    # Stalls holding a title show it by these criteria: their badges follow at once.
    for stall_id in db.session.scalars(_titled_stalls(region_code)):
        badge_cache.changed(stall_id=stall_id)
    return _criteria_view(region_code)


def _titled_stalls(region_code: str):
    return (select(ExemplarTitle.stall_id).where(ExemplarTitle.kind == "stall", ExemplarTitle.active_key.isnot(None),
                                                 ExemplarTitle.region_code.like(code_prefix(region_code) + "%")))


# -- candidates ----------------------------------------------------------------------------------
def candidates(actor, region_code: str, kind: str, market_id: int | None, include_all: bool,
               page: int, per_page: int, now: datetime | None = None) -> dict[str, Any]:
    _region(region_code)
    authorize(actor, ROLES, Target(region_code=region_code))
    now = now or utcnow()
    find = queries.stall_candidates if kind == "stall" else queries.market_candidates
    return find(region_code, market_id, now, page, per_page, include_all)


# -- confer and withdraw -------------------------------------------------------------------------
def _target(kind: str, target: str) -> tuple[Market, Stall | None]:
    if kind == "stall":
        stall = db.session.scalar(select(Stall).where(Stall.token == target)) if len(target) <= 32 else None
        if stall is None or stall.closed_at is not None:
            raise APIError(code="EXEMPLAR_TARGET_NOT_FOUND", details={"kind": kind, "target": target})
        return stall.market, stall
    market_id = typed_int(target)
    market = db.session.get(Market, market_id) if market_id else None
    if market is None or market.closed_at is not None:
        raise APIError(code="EXEMPLAR_TARGET_NOT_FOUND", details={"kind": kind, "target": target})
    return market, None


def _title_name(kind: str, title: str | None) -> str:
    if title is None:
        return STALL_TITLES[0] if kind == "stall" else MARKET_TITLE
    if (kind == "stall" and title not in STALL_TITLES) or (kind == "market" and title != MARKET_TITLE):
        raise APIError(code="EXEMPLAR_TITLE_INVALID", details={"kind": kind, "title": title})
    return title


def _failing(kind: str, market: Market, stall: Stall | None, title: str, now: datetime) -> list[dict]:
    criteria = effective(market.region_code)
    if stall is not None:
        checks = queries.stall_check(stall, criteria, now, party_member=title == "党员示范户")
    else:
        item = queries.market_check(market, criteria, now)
        checks = [c for c in item["criteria"] if c["required"]]
    return [{"key": c["key"], "label": c["label"]} for c in checks if not c["ok"]]


def snapshot(title: ExemplarTitle, now: datetime) -> dict[str, Any]:
    return {"kind": title.kind, "title": title.title, "stall_id": title.stall_id, "market_id": title.market_id,
            "merchant_id": title.merchant_id, "citation": title.citation, "status": title.status_at(now),
            "conferred_at": title.conferred_at.isoformat(), "ends_at": title.ends_at.isoformat()}


def _free_the_key(key: str, stall: Stall | None, now: datetime) -> None:
    """A title that can no longer be in force (its year is over, or the stall's holder changed)
    gives up its place; one still in force refuses a second conferral."""
    current = db.session.scalar(select(ExemplarTitle).where(ExemplarTitle.active_key == key))
    if current is None:
        return
    stale = current.status_at(now) != "active" or (stall is not None and current.merchant_id != stall.merchant_id)
    if not stale:
        raise APIError(code="EXEMPLAR_ALREADY_CONFERRED", details={"id": current.id})
    current.active_key = None
    db.session.flush()


def _page_changed(market_id: int) -> None:
    from app.exemplars.market_page import changed_in_this_transaction

    changed_in_this_transaction()
    db.session.execute(update(Market).where(Market.id == market_id).values(page_version=Market.page_version + 1)
                       .execution_options(synchronize_session=False))


def _changed(title: ExemplarTitle) -> None:
    if title.stall_id is not None:
        badge_cache.changed(stall_id=title.stall_id)  # the market's page follows its stalls' versions
    else:
        _page_changed(title.market_id)


def _holders(title: ExemplarTitle) -> list[int]:
    """Who the title belongs to: the owner of the business entity that held the stall when it
    was conferred, or the market's managers."""
    from app.identity.models import RoleGrant

    if title.kind == "stall":
        merchant = db.session.get(Merchant, title.merchant_id) if title.merchant_id else None
        return [merchant.owner_id] if merchant is not None else []
    return sorted(set(db.session.scalars(select(RoleGrant.user_id).where(
        RoleGrant.role == "market_manager", RoleGrant.scope_type == "market",
        RoleGrant.scope_id == str(title.market_id), RoleGrant.revoked_at.is_(None)))))


def _holder_name(title: ExemplarTitle) -> str:
    if title.stall is None:
        return title.market.name
    merchant = db.session.get(Merchant, title.merchant_id) if title.merchant_id else None
    return f"{title.market.name} {title.stall.number} 号摊位" + (f"（{merchant.name}）" if merchant else "")


def _page(title: ExemplarTitle) -> str:
    if title.stall is not None:
        return f"pages/stall/index?token={title.stall.token}"
    return f"pages/review/index?market_id={title.market_id}"


def _tell_holders(title: ExemplarTitle, outcome: str, at: datetime, reason: str | None = None) -> None:
    if outcome == "conferred":
        where = "摊位亮照页" if title.kind == "stall" else "市场公示页"
        heading = "示范称号已授予"
        body = (f"“{title.title}”称号已授予{_holder_name(title)}，有效期至 {queries.last_local_day(title.ends_at)}。"
                f"授予理由：{title.citation.rstrip('。.！!；;')}。称号在{where}显示；不再符合评选条件时（如证照到期、投诉经核实）"
                "暂停显示，重新符合后自动恢复。")
    else:
        heading = "示范称号已撤销"
        body = f"{_holder_name(title)}的“{title.title}”称号已被撤销，不再公开显示。"
    for user_id in _holders(title):
        notices.tell(user_id, kind="exemplar_decision", subject=f"exemplar:{title.id}", outcome=outcome,
                     title=heading, body=body, page=_page(title), at=at, reason=reason)


def confer(actor, data: dict[str, Any], now: datetime | None = None) -> ExemplarTitle:
    """Confer a title for a year on a stall (its sticker token) or a market (its id) that meets
    its region's criteria now; refused with the list of failing criteria otherwise."""
    now = now or utcnow()
    kind = data["kind"]
    market, stall = _target(kind, str(data["target"]).strip())
    role = authorize(actor, ROLES, Target(region_code=market.region_code, market_id=market.id))
    title_name = _title_name(kind, data.get("title"))
    failing = _failing(kind, market, stall, title_name, now)
    if failing:
        raise APIError(code="EXEMPLAR_CRITERIA_NOT_MET",
                       message="不符合示范评选条件：" + "；".join(f["label"] for f in failing),
                       details={"failing": failing})
    key = f"stall:{stall.id}" if stall is not None else f"market:{market.id}"
    _free_the_key(key, stall, now)
    criteria = effective(market.region_code)
    title = ExemplarTitle(kind=kind, title=title_name, stall_id=stall.id if stall else None,
                          merchant_id=stall.merchant_id if stall else None, market_id=market.id,
                          region_code=market.region_code, citation=data["citation"].strip(), conferred_at=now,
                          ends_at=local_midnight_utc(local_today(now) + TERM), conferred_by_id=actor.id,
                          criteria=criteria.snapshot(), active_key=key, created_at=now, updated_at=now)
    try:
        with db.session.begin_nested():
            db.session.add(title)
            db.session.flush()
    except IntegrityError:
        raise APIError(code="EXEMPLAR_ALREADY_CONFERRED")  # another regulator conferred it first
    audit.record("exemplar.confer", "exemplar_title", title.id, actor=actor, actor_role=role,
                 after=snapshot(title, now), reason=title.citation)
    _changed(title)
    _tell_holders(title, "conferred", now)
    return title


def get_title(title_id: int) -> ExemplarTitle:
    return get_or_404(ExemplarTitle, title_id, "EXEMPLAR_NOT_FOUND")


def _title_target(title: ExemplarTitle) -> Target:
    return Target(region_code=title.region_code, market_id=title.market_id)


def withdraw(actor, title_id: int, reason: str | None, now: datetime | None = None) -> ExemplarTitle:
    now = now or utcnow()
    title = get_title(title_id)
    role = authorize(actor, ROLES, _title_target(title))
    reason = decision_reason("revoke", reason, required=True)
    before = snapshot(title, now)
    result = db.session.execute(
        update(ExemplarTitle).where(ExemplarTitle.id == title.id, ExemplarTitle.active_key.isnot(None),
                                    ExemplarTitle.withdrawn_at.is_(None), ExemplarTitle.ends_at > now)
        .values(withdrawn_at=now, withdrawn_by_id=actor.id, withdraw_reason=reason, active_key=None, updated_at=now)
        .execution_options(synchronize_session=False))
    db.session.refresh(title)
    if result.rowcount != 1:
        raise APIError(code="EXEMPLAR_NOT_ACTIVE", details={"status": title.status_at(now)})
    audit.record("exemplar.withdraw", "exemplar_title", title.id, actor=actor, actor_role=role,
                 before=before, after=snapshot(title, now), reason=reason)
    _changed(title)
    _tell_holders(title, "revoked", now, reason=reason)
    return title


def view_title(actor, title_id: int) -> ExemplarTitle:
    title = get_title(title_id)
    authorize(actor, ROLES, _title_target(title))
    return title


def list_titles(actor, region_code: str, kind: str | None, status: str | None, page: int, per_page: int,
                now: datetime | None = None) -> dict[str, Any]:
    """Titles conferred in the region, newest first."""
    _region(region_code)
    authorize(actor, ROLES, Target(region_code=region_code))
    now = now or utcnow()
    stmt = select(ExemplarTitle).where(ExemplarTitle.region_code.like(code_prefix(region_code) + "%"))
    if kind:
        stmt = stmt.where(ExemplarTitle.kind == kind)
    if status == "active":
        stmt = stmt.where(ExemplarTitle.withdrawn_at.is_(None), ExemplarTitle.ends_at > now)
    elif status == "withdrawn":
        stmt = stmt.where(ExemplarTitle.withdrawn_at.isnot(None))
    elif status == "ended":
        stmt = stmt.where(ExemplarTitle.withdrawn_at.is_(None), ExemplarTitle.ends_at <= now)
    return paginate(stmt.order_by(ExemplarTitle.conferred_at.desc(), ExemplarTitle.id.desc()), page, per_page)

