"""Coverage roll-ups kept in step with the facts they count (issue 14: a province's overview
must not scan the province).

Writers do nothing special. Every stall, credential, pledge, membership, entity or market row a
transaction writes (through a flush, a Core insert or a review's compare-and-set: the paths of
app.core.generations) marks the markets and entities it touches; just before the commit those
markets are recounted (a few indexed aggregates over one market's rows) and those entities'
presence per scope recounted, and the differences are added to the region rows. The writer's
own transaction carries the roll-up, so the figures never disagree with a committed fact.

Concurrency (PostgreSQL): the recount takes a transaction-scoped advisory lock per entity, then
per market, in ascending order, before it counts; under READ COMMITTED each count then sees
every commit that held the lock before it, and the last writer counts last. The locks are taken
only at commit time and in one global order, so they cannot deadlock with each other.

Time: a credential or pledge that starts or ends changes the figures with no write. Each row
keeps `changes_at`; a read corrects the rows past it (few: the refresh series stores them every
few minutes), so what the overview says is exact at the instant it states."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import (DateTime, and_, bindparam, case, delete, event, func, inspect as sa_inspect, select,
                        text)
from sqlalchemy.orm import Session

from app.core import generations
from app.core.regions import codes_under, region_level
from app.core.time import end_of_local_day_utc, local_midnight_utc, local_today, utcnow
from app.credentials.models import Credential
from app.markets.models import Market, Merchant, Stall
from app.orgs.models import Membership, PartyOrg, StationRider
from app.pledges.models import Pledge
from app.stats.models import (COUNTED_FIELDS, DISTINCT_FIELDS, PARTY_FIELDS, MarketCoverage, MerchantScope,
                              OrgCoverage, RegionCoverage)
from app.stats.party import party_households
from app.stats.queries import credential_counts, pledge_counts, stall_counts

NATIONAL = "000000"
ALL_FIELDS = COUNTED_FIELDS + DISTINCT_FIELDS
MARKET_SECTIONS = (stall_counts, credential_counts, pledge_counts, party_households)
CHUNK = 500  # ids per IN list (SQLite's bound-parameter limit, and sane statement sizes)
_MARKS = "xgz_coverage_marks"  # Session.info: what this transaction touched
_LOCK_SPACE = {"rebuild": 73000, "merchant": 73001, "market": 73002, "org": 73003}  # pg advisory lock class ids


def scopes_of(region_code: str) -> list[str]:
    """The scopes a market registered at `region_code` counts in: the country, its province,
    its city, its county; a market registered at a province's or city's own level also counts
    in "=<code>" (the overview's `direct` row)."""
    level = region_level(region_code)
    scopes = [NATIONAL, region_code[:2] + "0000"]
    if level >= 2:
        scopes.append(region_code[:4] + "00")
    scopes.append(region_code if level == 3 else "=" + region_code)
    return scopes


def direct_scope(code: str) -> str:
    return code if code != NATIONAL and region_level(code) == 3 else "=" + code


def _zero() -> dict[str, int]:
    return dict.fromkeys(ALL_FIELDS + PARTY_FIELDS, 0)


def _chunks(ids: Iterable[int], size: int = CHUNK):
    ids = sorted(set(ids))
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


# -- counting from the facts --------------------------------------------------------------------
def count_markets(session: Session, market_ids: Iterable[int], now: datetime,
                  chunk: int = CHUNK) -> dict[int, dict[str, Any]]:
    """{market_id: {region_code, changes_at, <every field>}} counted from the facts now (`chunk`
    markets per statement: the licence count hashes every credential whatever the chunk)."""
    counted: dict[int, dict[str, Any]] = {}
    for ids in _chunks(market_ids, chunk):
        for market_id, region_code in session.execute(
                select(Market.id, Market.region_code).where(Market.id.in_(ids))):
            counted[market_id] = {**dict.fromkeys(ALL_FIELDS, 0), "markets": 1, "region_code": region_code,
                                  "changes_at": None}
        for section in MARKET_SECTIONS:
            for market_id, values in section(ids, now).items():
                if market_id in counted:
                    counted[market_id].update(values)
        for market_id, at in _next_changes(session, ids, now).items():
            if market_id in counted:
                counted[market_id]["changes_at"] = at
    return counted


def _next_changes(session: Session, market_ids: list[int], now: datetime) -> dict[int, datetime]:
    """The next instant time alone changes a market's counts: a verified credential of one of
    its entities starting or ending (by local day), or a pledge of the market starting or ending."""
    today = local_today(now)
    soonest: dict[int, datetime] = {}

    def keep(market_id, at):
        if at is not None and (market_id not in soonest or at < soonest[market_id]):
            soonest[market_id] = at

    starts = func.min(case((Credential.valid_from > today, Credential.valid_from)))
    ends = func.min(case((and_(Credential.long_term.is_(False), Credential.valid_until >= today),
                          Credential.valid_until)))
    for market_id, start, end in session.execute(
            select(Stall.market_id, starts, ends).join(Credential, Credential.merchant_id == Stall.merchant_id)
            .where(Stall.market_id.in_(market_ids), Credential.status == "verified").group_by(Stall.market_id)):
        keep(market_id, local_midnight_utc(start) if start else None)
        keep(market_id, end_of_local_day_utc(end) if end else None)
    for market_id, start, end in session.execute(
            select(Pledge.market_id, func.min(case((Pledge.valid_from > now, Pledge.valid_from))),
                   func.min(case((Pledge.valid_until > now, Pledge.valid_until))))
            .where(Pledge.market_id.in_(market_ids), Pledge.status == "approved").group_by(Pledge.market_id)):
        keep(market_id, start)
        keep(market_id, end)
    return soonest


def count_orgs(session: Session, org_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """{org_id: {region_code, kind, sector, members_verified, members_floating, riders}}."""
    counted: dict[int, dict[str, Any]] = {}
    for ids in _chunks(org_ids):
        for org_id, region_code, kind, sector in session.execute(
                select(PartyOrg.id, PartyOrg.region_code, PartyOrg.kind, PartyOrg.sector).where(PartyOrg.id.in_(ids))):
            counted[org_id] = {"region_code": region_code, "kind": kind, "sector": sector,
                               "members_verified": 0, "members_floating": 0, "riders": 0}
        for org_id, verified, floating in session.execute(
                select(Membership.org_id, func.count(), func.count().filter(Membership.floating.is_(True)))
                .where(Membership.org_id.in_(ids), Membership.status == "verified").group_by(Membership.org_id)):
            counted[org_id].update(members_verified=verified, members_floating=floating)
        for org_id, riders in session.execute(
                select(StationRider.org_id, func.count(StationRider.user_id.distinct()))
                .where(StationRider.org_id.in_(ids)).group_by(StationRider.org_id)):
            counted[org_id]["riders"] = riders
    return counted


def party_values(org) -> dict[str, int]:
    """What one organisation adds to its regions' party columns."""
    get = org.get if isinstance(org, dict) else (lambda name: getattr(org, name))
    values = dict.fromkeys(PARTY_FIELDS, 0)
    values.update(orgs=1, rider_stations=int(get("sector") == "rider"), members_verified=get("members_verified"),
                  members_floating=get("members_floating"), riders=get("riders"))
    if f"orgs_{get('kind')}" in values:
        values[f"orgs_{get('kind')}"] = 1
    return values


@dataclass
class Presence:
    """An entity in one scope: stalls held there, a pledge in force there, when that changes."""
    stalls: int = 0
    pledged: bool = False
    changes_at: datetime | None = None

    def counts(self) -> dict[str, int]:
        return {"merchants": int(self.stalls > 0), "merchants_with_pledge_in_force": int(self.pledged)}

    def kept(self) -> bool:
        return self.stalls > 0 or self.pledged or self.changes_at is not None


def count_presence(session: Session, merchant_ids: Iterable[int], now: datetime) -> dict[tuple[str, int], Presence]:
    """{(scope, merchant_id): Presence} counted from the facts now."""
    found: dict[tuple[str, int], Presence] = defaultdict(Presence)
    for ids in _chunks(merchant_ids):
        for merchant_id, region_code, n in session.execute(
                select(Stall.merchant_id, Market.region_code, func.count())
                .join(Market, Market.id == Stall.market_id)
                .where(Stall.merchant_id.in_(ids)).group_by(Stall.merchant_id, Market.region_code)):
            for scope in scopes_of(region_code):
                found[(scope, merchant_id)].stalls += n
        for merchant_id, region_code, valid_from, valid_until in session.execute(
                select(Pledge.merchant_id, Market.region_code, Pledge.valid_from, Pledge.valid_until)
                .join(Market, Market.id == Pledge.market_id)
                .where(Pledge.merchant_id.in_(ids), Pledge.status == "approved", Pledge.valid_until > now)):
            boundary = valid_from if valid_from > now else valid_until
            for scope in scopes_of(region_code):
                presence = found[(scope, merchant_id)]
                presence.pledged = presence.pledged or valid_from <= now
                if presence.changes_at is None or boundary < presence.changes_at:
                    presence.changes_at = boundary
    return dict(found)


# -- storing: recount what a transaction touched --------------------------------------------------
@dataclass
class Deltas:
    """What to add to each region row."""
    by_scope: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))

    def add(self, scopes: Iterable[str], values: dict[str, int], sign: int = 1) -> None:
        for scope in scopes:
            row = self.by_scope[scope]
            for name, value in values.items():
                row[name] += sign * value

    def apply(self, session: Session) -> None:
        """One upsert per scope, in code order (the same order in every transaction)."""
        insert = _dialect_insert(session)
        table = RegionCoverage.__table__
        for scope in sorted(self.by_scope):
            changes = {name: n for name, n in self.by_scope[scope].items() if n}
            if not changes:
                continue
            statement = insert(table).values(scope_code=scope, **changes)
            session.execute(statement.on_conflict_do_update(
                index_elements=["scope_code"],
                set_={name: table.c[name] + statement.excluded[name] for name in changes}))


def recount_markets(session: Session, market_ids: Iterable[int], now: datetime, deltas: Deltas) -> None:
    """Store the markets' rows as counted now; their differences go to `deltas`."""
    market_ids = sorted(set(market_ids))
    if not market_ids:
        return
    stored = {row.market_id: row for ids in _chunks(market_ids)
              for row in session.scalars(select(MarketCoverage).where(MarketCoverage.market_id.in_(ids)))}
    counted = count_markets(session, market_ids, now)
    rows = []
    for market_id in market_ids:
        old, new = stored.get(market_id), counted.get(market_id)
        if old is not None:
            deltas.add(scopes_of(old.region_code), {name: getattr(old, name) for name in COUNTED_FIELDS}, -1)
        if new is not None:
            deltas.add(scopes_of(new["region_code"]), {name: new[name] for name in COUNTED_FIELDS})
            rows.append({"market_id": market_id, "counted_at": now, **new})
    gone = [market_id for market_id in stored if market_id not in counted]
    if gone:
        session.execute(delete(MarketCoverage).where(MarketCoverage.market_id.in_(gone)))
    if rows:
        insert = _dialect_insert(session)
        statement = insert(MarketCoverage.__table__)
        columns = [name for name in rows[0] if name != "market_id"]
        session.execute(statement.on_conflict_do_update(
            index_elements=["market_id"], set_={name: statement.excluded[name] for name in columns}), rows)


def recount_presence(session: Session, merchant_ids: Iterable[int], now: datetime, deltas: Deltas) -> None:
    """Store the entities' presence per scope as counted now; the distinct counts of each scope
    move by the entities that arrived or left there."""
    merchant_ids = sorted(set(merchant_ids))
    if not merchant_ids:
        return
    stored: dict[tuple[str, int], Presence] = {}
    for ids in _chunks(merchant_ids):
        for row in session.scalars(select(MerchantScope).where(MerchantScope.merchant_id.in_(ids))):
            stored[(row.scope_code, row.merchant_id)] = Presence(row.stalls, row.pledged, row.changes_at)
    counted = {key: presence for key, presence in count_presence(session, merchant_ids, now).items()
               if presence.kept()}
    for key in stored.keys() | counted.keys():
        before = stored.get(key, Presence()).counts()
        after = counted.get(key, Presence()).counts()
        deltas.add([key[0]], {name: after[name] - before[name] for name in DISTINCT_FIELDS})
    for ids in _chunks(merchant_ids):
        session.execute(delete(MerchantScope).where(MerchantScope.merchant_id.in_(ids)))
    if counted:
        session.execute(MerchantScope.__table__.insert(), [
            {"scope_code": scope, "merchant_id": merchant_id, "stalls": p.stalls, "pledged": p.pledged,
             "changes_at": p.changes_at} for (scope, merchant_id), p in counted.items()])


def recount_orgs(session: Session, org_ids: Iterable[int], deltas: Deltas) -> None:
    """Store the organisations' rows as counted now; their differences go to `deltas`."""
    org_ids = sorted(set(org_ids))
    if not org_ids:
        return
    stored = {row.org_id: row for ids in _chunks(org_ids)
              for row in session.scalars(select(OrgCoverage).where(OrgCoverage.org_id.in_(ids)))}
    counted = count_orgs(session, org_ids)
    for org_id in org_ids:
        old, new = stored.get(org_id), counted.get(org_id)
        if old is not None:
            deltas.add(scopes_of(old.region_code), party_values(old), -1)
        if new is not None:
            deltas.add(scopes_of(new["region_code"]), party_values(new))
    for ids in _chunks(org_ids):
        session.execute(delete(OrgCoverage).where(OrgCoverage.org_id.in_(ids)))
    if counted:
        session.execute(OrgCoverage.__table__.insert(), [{"org_id": org_id, **row} for org_id, row in counted.items()])


def refresh(session: Session, market_ids: Iterable[int] = (), merchant_ids: Iterable[int] = (),
            owner_ids: Iterable[int] = (), org_ids: Iterable[int] = (), now: datetime | None = None) -> None:
    """Recount these markets, entities (and those of these owners) and party organisations in
    the session's transaction: lock, count, store, move the region rows."""
    now = now or utcnow()
    merchants, markets = set(merchant_ids), set(market_ids)
    for ids in _chunks(owner_ids):
        merchants.update(session.scalars(select(Merchant.id).where(Merchant.owner_id.in_(ids))))
    for market_id in _moved(session, markets):  # a market moved region: its entities move with it
        merchants.update(session.scalars(select(Stall.merchant_id.distinct()).where(
            Stall.market_id == market_id, Stall.merchant_id.isnot(None))))
        merchants.update(session.scalars(select(Pledge.merchant_id.distinct()).where(Pledge.market_id == market_id)))
    _lock_shared(session, "rebuild")
    _lock(session, "merchant", merchants)
    for ids in _chunks(merchants):  # their stalls' markets count their credentials and members
        markets.update(session.scalars(select(Stall.market_id.distinct()).where(Stall.merchant_id.in_(ids))))
    _lock(session, "market", markets)
    _lock(session, "org", org_ids)
    deltas = Deltas()
    recount_presence(session, merchants, now, deltas)
    recount_markets(session, markets, now, deltas)
    recount_orgs(session, org_ids, deltas)
    deltas.apply(session)


def _moved(session: Session, market_ids: set[int]) -> list[int]:
    """Markets whose stored row is under another region than the market now."""
    moved = []
    for ids in _chunks(market_ids):
        moved += session.scalars(select(MarketCoverage.market_id).join(Market, Market.id == MarketCoverage.market_id)
                                 .where(MarketCoverage.market_id.in_(ids), Market.region_code != MarketCoverage.region_code))
    return moved


# -- locks (PostgreSQL; SQLite serialises writers already) -----------------------------------------
def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _lock(session: Session, space: str, ids: Iterable[int]) -> None:
    ids = sorted(set(ids))
    if ids and _is_postgres(session):
        session.execute(text("SELECT count(pg_advisory_xact_lock(:space, k)) FROM "
                             "(SELECT k FROM unnest(CAST(:ids AS integer[])) AS k ORDER BY k) AS ordered"),
                        {"space": _LOCK_SPACE[space], "ids": ids})


def _lock_shared(session: Session, space: str) -> None:
    """Writers share this lock; a rebuild holds it alone while it counts from nothing."""
    if _is_postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock_shared(:space, 0)"), {"space": _LOCK_SPACE[space]})


def _dialect_insert(session: Session):
    if _is_postgres(session):
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


# -- marking what a transaction touched -----------------------------------------------------------
def _marks(session: Session) -> dict[str, set]:
    return session.info.setdefault(_MARKS, {"markets": set(), "merchants": set(), "owners": set(), "orgs": set()})


def _values(row, name: str) -> list:
    """The column's value now and, for an ORM object changed in this flush, before."""
    if isinstance(row, dict):
        return [row.get(name)]
    values = [getattr(row, name, None)]
    state = sa_inspect(row, raiseerr=False)
    if state is not None and name in state.attrs:
        values.extend(state.attrs[name].history.deleted or ())
    return values


def _marker(**columns: str):
    """An observer marking, for each kind ("markets", "merchants", "owners", "orgs"), the values of a column."""
    def collect(session: Session, row) -> None:
        marks = _marks(session)
        for kind, column in columns.items():
            marks[kind].update(value for value in _values(row, column) if value is not None)
    return collect


OBSERVED = {
    Market: _marker(markets="id"),
    Stall: _marker(markets="market_id", merchants="merchant_id"),
    Merchant: _marker(merchants="id", owners="owner_id"),
    Credential: _marker(merchants="merchant_id"),
    Pledge: _marker(markets="market_id", merchants="merchant_id"),
    Membership: _marker(owners="user_id", orgs="org_id"),
    PartyOrg: _marker(orgs="id"),
    StationRider: _marker(orgs="org_id"),
}


def _refresh_before_commit(session: Session) -> None:
    if session.new or session.dirty or session.deleted:
        session.flush()  # the commit's own flush comes after this hook: its rows mark now
    if not session.info.get(_MARKS):
        return
    marks = session.info.pop(_MARKS, None)
    if marks and any(marks.values()):
        refresh(session, marks["markets"], marks["merchants"], marks["owners"], marks["orgs"])
        session.flush()
    session.info.pop(_MARKS, None)


def _forget(session: Session, *args) -> None:
    session.info.pop(_MARKS, None)


def install() -> None:
    """create_app: observe the counted rows and recount before each commit (once per process)."""
    for model, collect in OBSERVED.items():
        generations.observe(model, collect)
    if not event.contains(Session, "before_commit", _refresh_before_commit):
        event.listen(Session, "before_commit", _refresh_before_commit)
        event.listen(Session, "after_rollback", _forget)


# -- reading --------------------------------------------------------------------------------------
def is_built(session: Session) -> bool:
    """The roll-ups hold every market (a rebuild, or every market created since they existed)."""
    return (session.get(RegionCoverage, NATIONAL) is not None
            or session.scalar(select(Market.id).limit(1)) is None)


def _fields(row, names=ALL_FIELDS) -> dict[str, int]:
    return {name: getattr(row, name) for name in names}


def _inlined(now: datetime):
    """`now` written into the statement, not bound: a bound instant lets psycopg prepare the
    statement after five runs and PostgreSQL then plan it generically, by region (a province:
    every one of its 20,000 market rows filtered, 12–19 ms) instead of by the few rows due."""
    return bindparam("due_at", now, type_=DateTime, literal_execute=True)


def scope_totals(session: Session, codes: list[str], region: str, now: datetime) -> dict[str, dict[str, int]]:
    """{scope: fields} for these scopes (all within the region `region`),
    exact at `now`: the stored rows, corrected for the markets and entities time has changed
    since they were stored."""
    totals = {code: _zero() for code in codes}
    for row in session.scalars(select(RegionCoverage).where(RegionCoverage.scope_code.in_(codes))):
        totals[row.scope_code] = _fields(row, ALL_FIELDS + PARTY_FIELDS)
    wanted = set(codes)

    due_markets = list(session.scalars(select(MarketCoverage).where(
        MarketCoverage.changes_at <= _inlined(now), codes_under(MarketCoverage.region_code, region))))
    live = count_markets(session, [row.market_id for row in due_markets], now)
    for row in due_markets:
        new = live.get(row.market_id)
        for scope in wanted.intersection(scopes_of(row.region_code)):
            for name in COUNTED_FIELDS:
                totals[scope][name] += (new[name] if new else 0) - getattr(row, name)

    due_presence = list(session.scalars(select(MerchantScope).where(
        MerchantScope.changes_at <= _inlined(now), MerchantScope.scope_code.in_(codes))))
    live_presence = count_presence(session, {row.merchant_id for row in due_presence}, now)
    for row in due_presence:
        after = live_presence.get((row.scope_code, row.merchant_id), Presence()).counts()
        before = Presence(row.stalls, row.pledged).counts()
        for name in DISTINCT_FIELDS:
            totals[row.scope_code][name] += after[name] - before[name]
    return totals


def market_rows(session: Session, markets_clause, page: int, per_page: int, now: datetime) -> tuple[list, int]:
    """One page of (id, name, region_code, fields) of the markets matching `markets_clause`, by
    region then name, and how many there are; rows past their `changes_at` are counted now."""
    total = session.scalar(select(func.count()).select_from(Market).where(markets_clause))
    listed = session.execute(
        select(Market.id, Market.name, Market.region_code, MarketCoverage)
        .outerjoin(MarketCoverage, MarketCoverage.market_id == Market.id).where(markets_clause)
        .order_by(Market.region_code, Market.name, Market.id).limit(per_page).offset((page - 1) * per_page)).all()
    stale = [market_id for market_id, _, _, row in listed
             if row is None or (row.changes_at is not None and row.changes_at <= now)]
    live = count_markets(session, stale, now)
    rows = [(market_id, name, code, live[market_id] if market_id in live else _fields(row))
            for market_id, name, code, row in listed]
    return rows, total


# -- keeping up with time, and starting over --------------------------------------------------------
def refresh_due(session: Session, now: datetime | None = None, batch: int = CHUNK) -> dict[str, int]:
    """Store the markets and entities whose counts time has changed (the refresh series; reads
    are exact without it, this keeps their corrections few). Commits per batch."""
    now = now or utcnow()
    done = {"markets": 0, "merchants": 0}
    while True:
        markets = list(session.scalars(select(MarketCoverage.market_id).where(
            MarketCoverage.changes_at <= now).limit(batch)))
        merchants = list(session.scalars(select(MerchantScope.merchant_id.distinct()).where(
            MerchantScope.changes_at <= now).limit(batch)))
        if not markets and not merchants:
            return done
        refresh(session, markets, merchants, now=now)
        session.commit()
        done["markets"] += len(markets)
        done["merchants"] += len(merchants)


def rebuild(session: Session, now: datetime | None = None, progress=None, batch: int = 5000) -> dict[str, int]:
    """Count every roll-up from nothing, in one transaction (writers wait for it on PostgreSQL);
    `progress(n)` hears of each batch of entities and markets counted. PostgreSQL counts in a
    few set-based statements (a province: minutes, not the half hour of entity-by-entity
    inserts); SQLite, for small databases, goes entity by entity through the writers' code."""
    now = now or utcnow()
    if _is_postgres(session):
        return _rebuild_in_sql(session, now, progress, batch)
    for model in (MerchantScope, MarketCoverage, OrgCoverage, RegionCoverage):
        session.execute(delete(model))
    deltas = Deltas()
    deltas.add([NATIONAL], {"markets": 0})
    merchant_ids = list(session.scalars(select(Merchant.id).order_by(Merchant.id)))
    for start in range(0, len(merchant_ids), batch):
        recount_presence(session, merchant_ids[start:start + batch], now, deltas)
        if progress:
            progress(len(merchant_ids[start:start + batch]))
    market_ids = list(session.scalars(select(Market.id).order_by(Market.id)))
    for start in range(0, len(market_ids), batch):
        recount_markets(session, market_ids[start:start + batch], now, deltas)
        if progress:
            progress(len(market_ids[start:start + batch]))
    org_ids = list(session.scalars(select(PartyOrg.id).order_by(PartyOrg.id)))
    for start in range(0, len(org_ids), batch):
        recount_orgs(session, org_ids[start:start + batch], deltas)
    session.execute(_dialect_insert(session)(RegionCoverage.__table__).values(scope_code=NATIONAL)
                    .on_conflict_do_nothing())
    deltas.apply(session)
    return {"markets": len(market_ids), "merchants": len(merchant_ids), "orgs": len(org_ids)}


def _scopes_sql(code: str) -> str:
    """SQL: `scopes_of(code)` as rows of a LATERAL (scope_code); NULL rows are to be filtered out.
    A province code (ddd0000) has no city scope; a county code (not ending in 00) is its own
    scope, a province's or city's code counts in "=<code>"."""
    return (f"CROSS JOIN LATERAL (VALUES ('{NATIONAL}'), (substr({code}, 1, 2) || '0000'), "
            f"(CASE WHEN {code} NOT LIKE '__0000' THEN substr({code}, 1, 4) || '00' END), "
            f"(CASE WHEN {code} NOT LIKE '%00' THEN {code} ELSE '=' || {code} END)) AS scope(scope_code)")


def _rebuild_in_sql(session: Session, now: datetime, progress, batch: int) -> dict[str, int]:
    """`rebuild` on PostgreSQL: the same rows as the Python path, counted set-based."""
    session.execute(text("SELECT pg_advisory_xact_lock(:space, 0)"), {"space": _LOCK_SPACE["rebuild"]})
    tables = [model.__tablename__ for model in (MerchantScope, MarketCoverage, OrgCoverage, RegionCoverage)]
    session.execute(text(f"TRUNCATE {', '.join(tables)}"))
    # For this transaction only: the entity aggregate hashes ~7 M rows, and the indexes are rebuilt.
    session.execute(text("SET LOCAL work_mem = '64MB'"))
    session.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
    merchants = _insert_presence_sql(session, now)
    if progress:
        progress(merchants)
    # Markets: the writers' per-market counts, a few grouped queries per 5,000 markets (a province:
    # ~20 s; per 500, 75 s, as each chunk's licence count hashes the whole credentials table).
    market_ids = list(session.scalars(select(Market.id).order_by(Market.id)))
    for start in range(0, len(market_ids), batch):
        counted = count_markets(session, market_ids[start:start + batch], now, chunk=batch)
        if counted:
            session.execute(MarketCoverage.__table__.insert(), [
                {"market_id": market_id, "counted_at": now, **row} for market_id, row in counted.items()])
        if progress:
            progress(len(market_ids[start:start + batch]))
    org_ids = list(session.scalars(select(PartyOrg.id).order_by(PartyOrg.id)))
    counted_orgs = count_orgs(session, org_ids)
    if counted_orgs:
        session.execute(OrgCoverage.__table__.insert(),
                        [{"org_id": org_id, **row} for org_id, row in counted_orgs.items()])
    _insert_regions_sql(session)
    for table in tables:
        session.execute(text(f"ANALYZE {table}"))  # they were empty when last analysed, or wholly different
    return {"markets": len(market_ids), "merchants": merchants, "orgs": len(org_ids)}


def _insert_presence_sql(session: Session, now: datetime) -> int:
    """merchant_scopes in one INSERT … SELECT: per (scope, entity) the stalls held there, whether a
    pledge is in force there, and the next start or end of an approved pledge not yet over;
    only the rows `Presence.kept()` keeps. Returns how many entities there are."""
    stalls, markets, pledges = Stall.__tablename__, Market.__tablename__, Pledge.__tablename__
    # ~4.6 M rows for a province: inserted in primary-key order into the bare table, its other
    # indexes built afterwards (as they stand in the database), not grown row by row (157 s of 176).
    secondary = session.execute(text(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() "
        "AND i.tablename = :table AND i.indexname NOT IN (SELECT conname FROM pg_constraint "
        "WHERE conrelid = CAST(:table AS regclass))"), {"table": MerchantScope.__tablename__}).all()
    for name, _ in secondary:
        session.execute(text(f'DROP INDEX "{name}"'))
    session.execute(text(f"""
        WITH facts AS (
            SELECT s.merchant_id, m.region_code, count(*) AS stalls, false AS pledged,
                   CAST(NULL AS timestamp) AS changes_at
            FROM {stalls} s JOIN {markets} m ON m.id = s.market_id
            WHERE s.merchant_id IS NOT NULL
            GROUP BY s.merchant_id, m.region_code
            UNION ALL
            SELECT p.merchant_id, m.region_code, 0, bool_or(p.valid_from <= :now),
                   min(CASE WHEN p.valid_from > :now THEN p.valid_from ELSE p.valid_until END)
            FROM {pledges} p JOIN {markets} m ON m.id = p.market_id
            WHERE p.status = 'approved' AND p.valid_until > :now AND p.merchant_id IS NOT NULL
            GROUP BY p.merchant_id, m.region_code)
        INSERT INTO {MerchantScope.__tablename__} (scope_code, merchant_id, stalls, pledged, changes_at)
        SELECT scope.scope_code, facts.merchant_id, sum(facts.stalls), bool_or(facts.pledged), min(facts.changes_at)
        FROM facts {_scopes_sql("facts.region_code")}
        WHERE scope.scope_code IS NOT NULL
        GROUP BY scope.scope_code, facts.merchant_id
        HAVING sum(facts.stalls) > 0 OR bool_or(facts.pledged) OR min(facts.changes_at) IS NOT NULL
        ORDER BY scope.scope_code, facts.merchant_id"""), {"now": now})
    for _, definition in secondary:
        session.execute(text(definition))
    return session.scalar(select(func.count()).select_from(Merchant))


def _insert_regions_sql(session: Session) -> None:
    """region_coverage from the three tables: per scope the sums of its markets' rows, its
    entities with stalls / with a pledge in force, the sums of its organisations' party values."""
    kinds = [name[len("orgs_"):] for name in PARTY_FIELDS if name.startswith("orgs_")]
    party = {"orgs": "1", "rider_stations": "CASE WHEN o.sector = 'rider' THEN 1 ELSE 0 END",
             "members_verified": "o.members_verified", "members_floating": "o.members_floating", "riders": "o.riders",
             **{f"orgs_{kind}": f"CASE WHEN o.kind = '{kind}' THEN 1 ELSE 0 END" for kind in kinds}}
    assert set(party) == set(PARTY_FIELDS), "party_values() and this SQL must list the same columns"
    columns = COUNTED_FIELDS + DISTINCT_FIELDS + PARTY_FIELDS

    def part(values: dict[str, str]) -> str:
        return ", ".join(f"{values.get(name, '0')} AS {name}" for name in columns)

    markets = part({name: f"c.{name}" for name in COUNTED_FIELDS})
    entities = part({"merchants": "count(*) FILTER (WHERE e.stalls > 0)",
                     "merchants_with_pledge_in_force": "count(*) FILTER (WHERE e.pledged)"})
    session.execute(text(f"""
        INSERT INTO {RegionCoverage.__tablename__} (scope_code, {", ".join(columns)})
        SELECT scope_code, {", ".join(f"sum({name})" for name in columns)}
        FROM (
            SELECT scope.scope_code, {markets}
            FROM {MarketCoverage.__tablename__} c {_scopes_sql("c.region_code")}
            UNION ALL
            SELECT e.scope_code, {entities}
            FROM {MerchantScope.__tablename__} e GROUP BY e.scope_code
            UNION ALL
            SELECT scope.scope_code, {part(party)}
            FROM {OrgCoverage.__tablename__} o {_scopes_sql("o.region_code")}
            UNION ALL
            SELECT '{NATIONAL}', {part({})}) AS rows
        WHERE scope_code IS NOT NULL
        GROUP BY scope_code"""))


def differences(session: Session, now: datetime | None = None) -> list[str]:
    """What the stored roll-ups say that a count from nothing does not (empty when they agree):
    for `flask stats rollups check` and the tests."""
    now = now or utcnow()
    found = []
    stored = {row.market_id: row for row in session.scalars(select(MarketCoverage))}
    market_ids = list(session.scalars(select(Market.id)))
    counted = count_markets(session, market_ids, now)
    for market_id in market_ids:
        row = stored.get(market_id)
        if row is None:
            found.append(f"market {market_id}: no row")
        elif row.changes_at is None or row.changes_at > now:  # a due row is corrected by reads
            want = {name: counted[market_id][name] for name in ALL_FIELDS}
            if _fields(row) != want:
                found.append(f"market {market_id}: stored {_fields(row)} counted {want}")
    expected: dict[str, dict[str, int]] = defaultdict(_zero)
    for values in counted.values():
        for scope in scopes_of(values["region_code"]):
            for name in COUNTED_FIELDS:
                expected[scope][name] += values[name]
    presence = count_presence(session, list(session.scalars(select(Merchant.id))), now)
    for (scope, _), p in presence.items():
        for name, n in p.counts().items():
            expected[scope][name] += n
    for org in count_orgs(session, list(session.scalars(select(PartyOrg.id)))).values():
        for scope in scopes_of(org["region_code"]):
            for name, n in party_values(org).items():
                expected[scope][name] += n
    codes = sorted(set(expected) | set(session.scalars(select(RegionCoverage.scope_code))))
    for code in codes:
        have = scope_totals(session, [code], code.lstrip("="), now)[code]
        want = expected.get(code, _zero())
        if have != want:
            found.append(f"scope {code}: stored {have} counted {want}")
    return found
