"""Read side of 典型选树: which stalls and markets meet their region's criteria (set-based SQL,
one statement per group of markets sharing criteria), and the badge fact `exemplar`.

The stall criteria, exactly as the badge shows its items (app/badge/compute.py):
  credentials  the licence and every kind of permit the entity shows: a verified document in
               force today (local day), and at least one permit;
  pledge       a pledge in force now, and in force without a break (renewals begin when the
               pledge they renew ends) for at least `pledge_days`;
  no_upheld    the badge counts no upheld complaint or rider report (its own 90-day window:
               the stored projection's verdict is not "warning");
  party_member the operator is a verified party member (when required, and for 党员示范户).
Market criteria are shares of its stalls in business (held, not closed): full badges (the stored
verdict 放心摊位), pledges in force; a party organisation of the market; a minimum size."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, case, exists, func, literal, or_, select, union_all
from sqlalchemy.orm import aliased

from app.badge.facts import provides
from app.badge.models import StallBadge
from app.core.reader import as_datetime, query, sql_time
from app.core.regions import code_prefix
from app.core.time import local_today, to_local
from app.credentials.models import LICENCE_KIND, Credential
from app.exemplars.criteria import Criteria, effective_for, from_row, region_chain
from app.exemplars.models import ExemplarTitle
from app.extensions import db
from app.markets.models import Market, Merchant, Stall
from app.orgs.models import Membership, PartyOrg
from app.pledges.models import Pledge, in_force_clause

STALL_CRITERIA = ("credentials", "pledge", "no_upheld", "party_member")
MARKET_CRITERIA = ("min_stalls", "full_badge", "pledges", "party_org")


def stall_labels(criteria: Criteria) -> dict[str, str]:
    return {"credentials": "营业执照和各项许可证均已公示且在有效期内",
            "pledge": f"诚信经营承诺连续生效满 {criteria.pledge_days} 天",
            "no_upheld": "近 90 天无经核实的投诉或举报",
            "party_member": "经营者为经核实的党员"}


def market_labels(criteria: Criteria) -> dict[str, str]:
    return {"min_stalls": f"在营摊位不少于 {criteria.market_min_stalls} 个",
            "full_badge": f"亮照亮证、承诺齐全（放心摊位）的摊位占比不低于 {criteria.market_full_badge_pct}%",
            "pledges": f"诚信经营承诺生效的摊位占比不低于 {criteria.market_pledge_pct}%",
            "party_org": "市场已建立党组织"}


def stall_required(criteria: Criteria, party_member: bool = False) -> tuple[str, ...]:
    wanted = {"pledge"}
    if criteria.require_credentials:
        wanted.add("credentials")
    if criteria.no_upheld:
        wanted.add("no_upheld")
    if criteria.require_party_member or party_member:
        wanted.add("party_member")
    return tuple(key for key in STALL_CRITERIA if key in wanted)


def market_required(criteria: Criteria) -> tuple[str, ...]:
    return tuple(key for key in MARKET_CRITERIA if key != "party_org" or criteria.market_require_party_org)


# -- the pieces, as SQL --------------------------------------------------------------------------
def _document_in_force(credential, today):
    """The badge's in_force() for a verified document, by local day (app/badge/compute.py)."""
    return and_(credential.status == "verified",
                or_(credential.valid_from.is_(None), credential.valid_from <= today),
                or_(credential.long_term.is_(True),
                    and_(credential.valid_until.isnot(None), credential.valid_until >= today)))


def credentials_ok(merchant_id, today):
    licence = aliased(Credential)
    permit, shown = aliased(Credential), aliased(Credential)
    has_licence = exists().where(licence.merchant_id == merchant_id, licence.kind == LICENCE_KIND,
                                 _document_in_force(licence, today))
    has_permit = exists().where(permit.merchant_id == merchant_id, permit.kind != LICENCE_KIND)
    kind_not_shown = exists().where(
        permit.merchant_id == merchant_id, permit.kind != LICENCE_KIND,
        ~exists().where(shown.merchant_id == permit.merchant_id, shown.kind == permit.kind,
                        _document_in_force(shown, today)))
    return and_(has_licence, has_permit, ~kind_not_shown)


def pledge_since(now: datetime):
    """Per entity with a pledge in force at `now`: since when its pledges have been in force
    without a break (a recursive CTE walking back through the pledges each one renewed)."""
    base = select(Pledge.merchant_id.label("merchant_id"), Pledge.valid_from.label("since")).where(in_force_clause(now))
    chain = base.cte("pledge_chain", recursive=True)
    previous = chain.alias("later")
    earlier = aliased(Pledge)
    chain = chain.union_all(
        select(earlier.merchant_id, earlier.valid_from).where(
            earlier.merchant_id == previous.c.merchant_id, earlier.status.in_(("approved", "expired")),
            earlier.valid_from < previous.c.since, earlier.valid_until >= previous.c.since))
    return (select(chain.c.merchant_id, func.min(chain.c.since).label("since"))
            .group_by(chain.c.merchant_id).subquery("pledge_since"))


def party_member_ok(owner_id):
    return exists().where(Membership.user_id == owner_id, Membership.status == "verified")


def _flag(condition):
    return case((condition, 1), else_=0)


def _scope(stmt, region_code: str, market_id: int | None):
    stmt = stmt.where(Market.region_code.like(code_prefix(region_code) + "%"), Market.closed_at.is_(None))
    return stmt.where(Market.id == market_id) if market_id is not None else stmt


def _active_title(kind: str, now: datetime):
    """The id of the object's title in its year and not withdrawn (a correlated subquery)."""
    target = (and_(ExemplarTitle.stall_id == Stall.id, ExemplarTitle.merchant_id == Stall.merchant_id)
              if kind == "stall" else ExemplarTitle.market_id == Market.id)
    return (select(ExemplarTitle.id).where(ExemplarTitle.kind == kind, target, ExemplarTitle.active_key.isnot(None),
                                           ExemplarTitle.ends_at > now)
            .correlate_except(ExemplarTitle).limit(1).scalar_subquery())


# -- stalls --------------------------------------------------------------------------------------
def _stall_select(criteria: Criteria, market_ids: list[int], now: datetime, only_meeting: bool,
                  since, stall_id: int | None = None, party_member: bool = False):
    today = local_today(now)
    cutoff = now - timedelta(days=criteria.pledge_days)
    checks = {
        "credentials": credentials_ok(Stall.merchant_id, today),
        "pledge": and_(since.c.since.isnot(None), since.c.since <= cutoff),
        "no_upheld": or_(StallBadge.verdict_level.is_(None), StallBadge.verdict_level != "warning"),
        "party_member": party_member_ok(Merchant.owner_id),
    }
    stmt = (select(Stall.id.label("stall_id"), Stall.token, Stall.number, Market.id.label("market_id"),
                   Market.name.label("market_name"), Market.region_code, Merchant.name.label("merchant_name"),
                   Merchant.operator_name, since.c.since.label("pledge_since"),
                   _active_title("stall", now).label("title_id"),
                   *[_flag(check).label(f"ok_{key}") for key, check in checks.items()])
            .join(Market, Market.id == Stall.market_id).join(Merchant, Merchant.id == Stall.merchant_id)
            .outerjoin(since, since.c.merchant_id == Stall.merchant_id)
            .outerjoin(StallBadge, StallBadge.stall_id == Stall.id)
            .where(Stall.market_id.in_(market_ids), Stall.closed_at.is_(None)))
    if stall_id is not None:
        stmt = stmt.where(Stall.id == stall_id)
    if only_meeting:
        stmt = stmt.where(*[checks[key] for key in stall_required(criteria, party_member)])
    return stmt


def _markets_by_criteria(region_code: str, market_id: int | None) -> dict[Criteria, list[int]]:
    rows = db.session.execute(_scope(select(Market.id, Market.region_code), region_code, market_id)).all()
    criteria = effective_for({row.region_code for row in rows})
    groups: dict[Criteria, list[int]] = {}
    for row in rows:
        groups.setdefault(criteria[row.region_code], []).append(row.id)
    return groups


def _criteria_list(keys, labels, row, required) -> list[dict]:
    return [{"key": key, "label": labels[key], "ok": bool(getattr(row, f"ok_{key}")), "required": key in required}
            for key in keys]


def stall_candidates(region_code: str, market_id: int | None, now: datetime, page: int, per_page: int,
                     include_all: bool = False) -> dict:
    """Stalls in business in the region (or one market of it) that meet their region's
    criteria now, with each criterion; `include_all` lists every stall with what holds."""
    groups = _markets_by_criteria(region_code, market_id)
    if not groups:
        return {"items": [], "total": 0, "page": page, "per_page": per_page}
    since = pledge_since(now)
    order = list(groups)
    selects = [_stall_select(criteria, groups[criteria], now, not include_all, since)
               .add_columns(literal(rank).label("criteria_rank")) for rank, criteria in enumerate(order)]
    combined = union_all(*selects).subquery("candidates") if len(selects) > 1 else selects[0].subquery("candidates")
    total = db.session.scalar(select(func.count()).select_from(combined))
    rows = db.session.execute(select(combined).order_by(combined.c.market_id, combined.c.number)
                              .limit(per_page).offset((page - 1) * per_page)).all()
    items = []
    for row in rows:
        criteria = order[row.criteria_rank]
        required = stall_required(criteria)
        checks = _criteria_list(STALL_CRITERIA, stall_labels(criteria), row, required)
        items.append({"kind": "stall", "target": row.token, "stall_id": row.stall_id, "number": row.number,
                      "market_id": row.market_id, "market_name": row.market_name, "region_code": row.region_code,
                      "merchant_name": row.merchant_name, "operator_name": row.operator_name,
                      "meets": all(c["ok"] for c in checks if c["required"]), "criteria": checks,
                      "criteria_region": criteria.source_region, "title_id": row.title_id,
                      "pledge_since": row.pledge_since})
    return {"items": items, "total": total, "page": page, "per_page": per_page}


def stall_check(stall: Stall, criteria: Criteria, now: datetime, party_member: bool = False) -> list[dict]:
    """Each criterion of one stall now (the same SQL as the candidates)."""
    row = db.session.execute(_stall_select(criteria, [stall.market_id], now, False, pledge_since(now),
                                           stall_id=stall.id)).first()
    required = stall_required(criteria, party_member)
    labels = stall_labels(criteria)
    if row is None:  # no entity holds the stall, or it is closed
        return [{"key": "held", "label": "摊位由经营主体在营", "ok": False, "required": True}]
    return [c for c in _criteria_list(STALL_CRITERIA, labels, row, required) if c["required"]]


# -- markets -------------------------------------------------------------------------------------
def _market_select(criteria: Criteria, market_ids: list[int], now: datetime, only_meeting: bool):
    in_business = and_(Stall.market_id == Market.id, Stall.merchant_id.isnot(None), Stall.closed_at.is_(None))
    held = select(func.count(Stall.id)).where(in_business).correlate(Market).scalar_subquery()
    full = (select(func.count(Stall.id)).join(StallBadge, StallBadge.stall_id == Stall.id)
            .where(in_business, StallBadge.verdict_level == "good").correlate(Market).scalar_subquery())
    pledged = (select(func.count(Stall.id)).where(in_business, exists().where(
        Pledge.merchant_id == Stall.merchant_id, in_force_clause(now))).correlate(Market).scalar_subquery())
    inner = (select(Market.id.label("market_id"), Market.name.label("market_name"), Market.region_code,
                    Market.token, held.label("held"), full.label("full"), pledged.label("pledged"),
                    _flag(exists().where(PartyOrg.market_id == Market.id)).label("ok_party_org"),
                    _active_title("market", now).label("title_id"))
             .where(Market.id.in_(market_ids))).subquery("market_counts")
    checks = {
        "min_stalls": and_(inner.c.held > 0, inner.c.held >= criteria.market_min_stalls),
        "full_badge": and_(inner.c.held > 0, inner.c.full * 100 >= inner.c.held * criteria.market_full_badge_pct),
        "pledges": and_(inner.c.held > 0, inner.c.pledged * 100 >= inner.c.held * criteria.market_pledge_pct),
        "party_org": inner.c.ok_party_org == 1,
    }
    stmt = select(inner, *[_flag(check).label(f"ok_{key}") for key, check in checks.items() if key != "party_org"])
    if only_meeting:
        stmt = stmt.where(*[checks[key] for key in market_required(criteria)])
    return stmt


def _market_item(row, criteria: Criteria) -> dict:
    required = market_required(criteria)
    checks = _criteria_list(MARKET_CRITERIA, market_labels(criteria), row, required)
    held = row.held or 0
    return {"kind": "market", "target": str(row.market_id), "market_id": row.market_id,
            "market_name": row.market_name, "region_code": row.region_code, "stalls_in_business": held,
            "full_badge_pct": round(row.full * 100 / held, 1) if held else 0.0,
            "pledge_pct": round(row.pledged * 100 / held, 1) if held else 0.0,
            "meets": all(c["ok"] for c in checks if c["required"]), "criteria": checks,
            "criteria_region": criteria.source_region, "title_id": row.title_id}


def market_candidates(region_code: str, market_id: int | None, now: datetime, page: int, per_page: int,
                      include_all: bool = False) -> dict:
    groups = _markets_by_criteria(region_code, market_id)
    if not groups:
        return {"items": [], "total": 0, "page": page, "per_page": per_page}
    order = list(groups)
    selects = [_market_select(criteria, groups[criteria], now, not include_all)
               .add_columns(literal(rank).label("criteria_rank"))
               for rank, criteria in enumerate(order)]
    combined = union_all(*selects).subquery("candidates") if len(selects) > 1 else selects[0].subquery("candidates")
    total = db.session.scalar(select(func.count()).select_from(combined))
    rows = db.session.execute(select(combined).order_by(combined.c.market_id)
                              .limit(per_page).offset((page - 1) * per_page)).all()
    return {"items": [_market_item(row, order[row.criteria_rank]) for row in rows], "total": total,
            "page": page, "per_page": per_page}


def market_check(market: Market, criteria: Criteria, now: datetime) -> dict:
    """The market's figures and each criterion now."""
    row = db.session.execute(_market_select(criteria, [market.id], now, False)).first()
    return _market_item(row, criteria)


# -- the badge fact ------------------------------------------------------------------------------
# Runs on every badge miss of a stall held by an entity: one indexed query, and two more only for
# a stall holding a title in force.
_TITLE_SQL = (
    "SELECT t.title, t.citation, t.conferred_at, t.ends_at, mk.region_code FROM exemplar_titles t "
    "JOIN markets mk ON mk.id = t.market_id WHERE t.stall_id = ? AND t.merchant_id = ? "
    "AND t.active_key IS NOT NULL AND t.conferred_at <= ? AND t.ends_at > ? ORDER BY t.id DESC LIMIT 1")
_CRITERIA_SQL = (
    "SELECT region_code, require_credentials, pledge_days, no_upheld, require_party_member FROM exemplar_criteria "
    "WHERE region_code IN ({})")
_PLEDGE_SINCE_SQL = (
    "WITH RECURSIVE chain(since) AS ("
    "SELECT valid_from FROM pledges WHERE merchant_id = ? AND status = 'approved' AND valid_from <= ? "
    "AND valid_until > ? "
    "UNION ALL SELECT p.valid_from FROM pledges p JOIN chain c ON p.valid_from < c.since AND p.valid_until >= c.since "
    "WHERE p.merchant_id = ? AND p.status IN ('approved', 'expired')) "
    "SELECT min(since) FROM chain")


def _stall_criteria(region_code: str) -> Criteria:
    chain = region_chain(region_code)
    rows = {row[0]: row for row in query(_CRITERIA_SQL.format(", ".join("?" * len(chain))), tuple(chain))}
    nearest = next((rows[code] for code in chain if code in rows), None)
    if nearest is None:
        return from_row(None)
    _, credentials, days, no_upheld, party = nearest
    return Criteria(require_credentials=bool(credentials), pledge_days=int(days), no_upheld=bool(no_upheld),
                    require_party_member=bool(party), source_region=nearest[0])


def last_local_day(ends_at: datetime) -> str:
    return (to_local(ends_at) - timedelta(microseconds=1)).date().isoformat()


@provides("exemplar")
def exemplar_entry(stall_id: int, merchant_id: int, now: datetime) -> dict | None:
    """The stall's 示范 title in force at `now` (conferred on the entity holding it), with what its
    criteria need from the badge's records, or None. Shape: {"title", "citation", "conferred_on",
    "valid_through", "require_credentials", "pledge_days", "pledge_since" (naive UTC | None),
    "no_upheld", "require_party_member", "changes_at" (the title's end, or the moment the
    pledge reaches its days)}."""
    moment = sql_time(now)
    rows = query(_TITLE_SQL, (stall_id, merchant_id, moment, moment))
    if not rows:
        return None
    title, citation, conferred_at, ends_at, region_code = rows[0]
    conferred_at, ends_at = as_datetime(conferred_at), as_datetime(ends_at)
    criteria = _stall_criteria(region_code)
    since = query(_PLEDGE_SINCE_SQL, (merchant_id, moment, moment, merchant_id))
    since = as_datetime(since[0][0]) if since and since[0][0] is not None else None
    moments = [ends_at]
    if since is not None and since + timedelta(days=criteria.pledge_days) > now:
        moments.append(since + timedelta(days=criteria.pledge_days))
    return {"title": title, "citation": citation, "conferred_on": to_local(conferred_at).date().isoformat(),
            "valid_through": last_local_day(ends_at), "require_credentials": criteria.require_credentials,
            "pledge_days": criteria.pledge_days, "pledge_since": since, "no_upheld": criteria.no_upheld,
            "require_party_member": criteria.require_party_member or title == "党员示范户",
            "changes_at": min(moments)}
