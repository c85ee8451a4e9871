"""The market's public page /m/<token> (no login): what the QR on the entrance board opens.

It lists the market's stalls in business with their verdicts and titles, read from the badge's
stored projection (stall_badges: one query for the whole market; only a stall whose stored badge
has passed its changes_at is recomputed, as any badge read would), and the market's own 示范市场
title while its criteria hold.

Cached per worker like the badge (QUALITY.md P11): the rendered bytes are kept under the page's
version — the market's own page_version (its title), the sum of its stalls' badge versions (any
badge change moves one of them) and their count — and never past the earliest changes_at of what
the page shows. A worker trusts a confirmed entry for VERSION_RECHECK, then asks again with one
small query; the WSGI fast path below answers warm reads before Flask's request machinery."""
from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, current_app, render_template, request
from sqlalchemy import event, inspect as sa_inspect, select, update
from sqlalchemy.orm import Session

from app.badge import cache as badge_cache
from app.core.frame import ROUTE_KEY
from app.core.reader import as_datetime, query
from app.core import generations
from app.core.caches import process_cache
from app.core.ids import typed_int
from app.core.time import isoformat_local, utcnow
from app.exemplars import queries
from app.exemplars.criteria import effective
from app.exemplars.models import ExemplarTitle
from app.extensions import db
from app.markets.models import Market
from app.orgs.models import PartyOrg

bp = Blueprint("market_page", __name__, template_folder="templates")

PAGE_SIZE = 200  # stalls per page; a bigger market pages with ?page=N
VERSION_RECHECK = badge_cache.VERSION_RECHECK
SAFETY_TTL = badge_cache.SAFETY_TTL
LOCAL_ENTRIES = 512
ROUTE = "/m/<token>"
TOKEN = re.compile(r"^/m/([0-9A-Za-z]{1,32})$")

_VERSION_SQL = (
    "SELECT m.id, m.page_version, m.closed_at, "
    "(SELECT coalesce(sum(s.badge_version), 0) FROM stalls s WHERE s.market_id = m.id), "
    "(SELECT count(*) FROM stalls s WHERE s.market_id = m.id) FROM markets m WHERE m.token = ?")
_STALLS_SQL = (
    "SELECT s.number, s.token, sb.changes_at, sb.body_json FROM stalls s "
    "LEFT JOIN stall_badges sb ON sb.stall_id = s.id "
    "WHERE s.market_id = ? AND s.closed_at IS NULL AND s.merchant_id IS NOT NULL ORDER BY s.number")
_VACANT_SQL = "SELECT count(*) FROM stalls WHERE market_id = ? AND closed_at IS NULL AND merchant_id IS NULL"


class MarketGone(Exception):
    """No market has this token."""


@dataclass(frozen=True)
class Page:
    version: str
    expires_at: datetime
    status: int  # 200, or 410 for a closed market
    body: bytes


def page_version(token: str, engine=None) -> tuple[int, str, bool]:
    """(market id, version, closed) of the market with `token`: one small query."""
    rows = query(_VERSION_SQL, (token,), engine=engine)
    if not rows:
        raise MarketGone(token)
    market_id, own, closed_at, versions, count = rows[0]
    closed = closed_at is not None  # closing a market moves no badge: it names the version itself
    return market_id, f"{own}.{versions}.{count}{'.closed' if closed else ''}", closed


# -- rendering -----------------------------------------------------------------------------------
def _titles(badge: dict) -> list[str]:
    titles = [item["label"] for item in badge["items"] if item["key"] == "exemplar" and item["ok"]]
    titles += ["共产党员经营户" for item in badge["items"] if item["key"] == "party_member" and item["ok"]]
    return titles


def _stalls(market_id: int, now: datetime) -> tuple[list[dict], list[datetime]]:
    """The market's stalls in business with their stored badges (a stored badge past its
    changes_at is recomputed and stored first, as its own page would)."""
    stalls, moments = [], []
    for number, token, changes_at, body in query(_STALLS_SQL, (market_id,)):
        changes_at = as_datetime(changes_at)
        if body is None or (changes_at is not None and changes_at <= now):
            try:
                entry = badge_cache.stored_entry("json", token, now)
            except badge_cache.StallGone:
                continue
            body, changes_at = entry.body, (entry.expires_at if entry.expires_at < now + SAFETY_TTL else None)
        if changes_at is not None:
            moments.append(changes_at)
        badge = json.loads(bytes(body))
        stalls.append({"number": number, "token": token, "verdict": badge["verdict"],
                       "level": badge["verdict_level"], "merchant": (badge.get("merchant") or {}).get("name"),
                       "titles": _titles(badge)})
    return stalls, moments


def _market_title(market: Market, now: datetime) -> tuple[dict | None, list[datetime]]:
    title = db.session.scalar(select(ExemplarTitle).where(
        ExemplarTitle.kind == "market", ExemplarTitle.market_id == market.id, ExemplarTitle.active_key.isnot(None),
        ExemplarTitle.conferred_at <= now, ExemplarTitle.ends_at > now))
    if title is None:
        return None, []
    check = queries.market_check(market, effective(market.region_code), now)
    failing = [c["label"] for c in check["criteria"] if c["required"] and not c["ok"]]
    return {"title": title.title, "citation": title.citation, "ok": not failing,
            "reason": ("称号暂停显示：未满足" + "；".join(failing)) if failing else None,
            "conferred_on": isoformat_local(title.conferred_at)[:10],
            "valid_through": queries.last_local_day(title.ends_at)}, [title.ends_at]


LEVEL_ORDER = ("good", "partial", "none", "warning")


def render(market_id: int, version: str, page: int, now: datetime) -> Page:
    market = db.session.get(Market, market_id)
    if market is None:
        raise MarketGone(market_id)
    if market.closed_at is not None:
        body = render_template("market_closed.html", market=market).encode()
        return Page(version, now + SAFETY_TTL, 410, body)
    stalls, moments = _stalls(market.id, now)
    title, title_moments = _market_title(market, now)
    counts = {level: sum(1 for s in stalls if s["level"] == level) for level in LEVEL_ORDER}
    pages = max(1, -(-len(stalls) // PAGE_SIZE))
    page = min(page, pages)
    shown = stalls[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]
    vacant = query(_VACANT_SQL, (market.id,))[0][0]
    body = render_template("market.html", market=market, stalls=shown, total=len(stalls), counts=counts,
                           titled=sum(1 for s in stalls if s["titles"]), vacant=vacant, title=title,
                           page=page, pages=pages, token=market.token,
                           computed_at=isoformat_local(now)[:16].replace("T", " ")).encode()
    future = [m for m in moments + title_moments if m > now]
    expires_at = min([now + SAFETY_TTL, *future])
    return Page(version, expires_at, 200, body)


# -- the per-worker cache ------------------------------------------------------------------------
class PageCache:
    """The latest page per (token, page number) with the moment its version was confirmed."""

    def __init__(self, size: int = LOCAL_ENTRIES) -> None:
        self.size = size
        self._data: OrderedDict[tuple[str, int], tuple[Page, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> tuple[Page, float] | None:
        with self._lock:
            return self._data.get(key)

    def put(self, key: tuple[str, int], page: Page) -> None:
        with self._lock:
            self._data[key] = (page, time.monotonic())
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


local_pages = process_cache("market_pages", PageCache())


# This worker's own changes show at once (other workers see them at their next version check,
# within VERSION_RECHECK): a transaction that changed any badge, or a market's title, drops this
# worker's pages when it commits.
STALE_KEY = "market_pages_stale"


def changed_in_this_transaction() -> None:
    db.session.info[STALE_KEY] = True


@event.listens_for(Session, "before_commit")
def _note_badge_changes(session) -> None:
    if session.info.get("badge_tokens"):
        session.info[STALE_KEY] = True


@event.listens_for(Session, "after_commit")
def _forget_pages(session) -> None:
    if session.info.pop(STALE_KEY, None):
        local_pages.clear()


@event.listens_for(Session, "after_rollback")
def _keep_pages(session) -> None:
    session.info.pop(STALE_KEY, None)


# A party organisation tied to a market is one of 示范市场's criteria, shown on the page with the
# title: creating, removing or moving one (its market_id changed, either way) moves the page's
# version of each market concerned before the transaction commits, whichever feature wrote it
# (observed through app.core.generations, so app.orgs need not know this page).
ORG_MARKETS = "market_pages_org_markets"


def _org_changed(session, row) -> None:
    if isinstance(row, dict):
        values = [row.get("market_id")]
    else:
        values = [row.market_id]
        state = sa_inspect(row, raiseerr=False)
        if state is not None:
            values += state.attrs.market_id.history.deleted or ()
    markets = {value for value in values if value is not None}
    if markets:
        session.info.setdefault(ORG_MARKETS, set()).update(markets)


def _bump_org_markets(session) -> None:
    if session.new or session.dirty or session.deleted:
        session.flush()  # the commit's own flush comes after this hook: its rows are observed now
    markets = session.info.pop(ORG_MARKETS, None)
    if markets:
        session.info[STALE_KEY] = True
        session.execute(update(Market).where(Market.id.in_(sorted(markets)))
                        .values(page_version=Market.page_version + 1).execution_options(synchronize_session=False))


@event.listens_for(Session, "after_rollback")
def _forget_org_markets(session) -> None:
    session.info.pop(ORG_MARKETS, None)


def fresh(token: str, page: int, now: datetime) -> Page | None:
    """This worker's page when its version was confirmed within VERSION_RECHECK."""
    held = local_pages.get((token, page))
    if held is None or now >= held[0].expires_at or time.monotonic() - held[1] >= VERSION_RECHECK:
        return None
    return held[0]


def confirmed(token: str, page: int, now: datetime, engine=None) -> tuple[Page | None, int, str]:
    """(this worker's page if still current, market id, version): one small query."""
    market_id, version, _closed = page_version(token, engine)
    held = local_pages.get((token, page))
    if held is not None and held[0].version == version and now < held[0].expires_at:
        local_pages.put((token, page), held[0])
        return held[0], market_id, version
    return None, market_id, version


def cached(token: str, page: int = 1) -> tuple[Page, datetime]:
    """The page (rendered at most once per version and changes_at per worker). Raises MarketGone."""
    now = utcnow()
    found = fresh(token, page, now)
    if found is not None:
        return found, now
    found, market_id, version = confirmed(token, page, now)
    if found is None:
        found = render(market_id, version, page, now)
        local_pages.put((token, page), found)
    return found, now


def etag(page: Page, number: int) -> str:
    return f'"m{page.version}-{int(page.expires_at.timestamp())}-{number}"'


def answer(page: Page, number: int, now: datetime, if_none_match: str | None) -> tuple[int, list, bytes]:
    max_age = max(0, min(badge_cache.BROWSER_MAX_AGE, int((page.expires_at - now).total_seconds())))
    headers = badge_cache.response_headers("html", max_age)
    tag = etag(page, number)
    headers.append(("ETag", tag))
    if page.status == 200 and if_none_match and (
            if_none_match.strip() == "*" or tag in [t.strip() for t in if_none_match.split(",")]):
        return 304, headers, b""
    return page.status, headers, page.body


# -- the Flask view (any page number, unknown tokens) and the WSGI fast path (warm first pages) ---
@bp.get("/m/<token>")
def market_page(token: str):
    number = typed_int(request.args.get("page"), maximum=99999) or 1
    try:
        if len(token) > 32:
            raise MarketGone(token)
        page, now = cached(token, number)
    except MarketGone:
        body = render_template("market_closed.html", market=None)
        response = current_app.response_class(body, status=404)
        for name, value in badge_cache.response_headers("html", 60):
            response.headers[name] = value
        return response
    status, headers, body = answer(page, number, now, request.headers.get("If-None-Match"))
    return current_app.response_class(body, status=status, headers=headers)


_STATUS_LINES = {200: "200 OK", 304: "304 Not Modified", 410: "410 Gone"}


class MarketPageFastPath:
    """GET/HEAD /m/<token> without a query string, answered from this worker's page after at most
    one small version query; everything else (and any error) goes to Flask unchanged."""

    def __init__(self, app, wsgi_app) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self._engine = None

    def _db_engine(self):
        if self._engine is None:
            with self.app.app_context():
                self._engine = db.engine
        return self._engine

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD") or environ.get("QUERY_STRING"):
            return self.wsgi_app(environ, start_response)
        found = TOKEN.match(environ.get("PATH_INFO", ""))
        if found is None:
            return self.wsgi_app(environ, start_response)
        token = found.group(1)
        now = utcnow()
        try:
            page = fresh(token, 1, now)
            if page is None:
                page, market_id, version = confirmed(token, 1, now, self._db_engine())
                if page is None:
                    with self.app.app_context():
                        page, now = cached(token, 1)
        except Exception:
            return self.wsgi_app(environ, start_response)  # unknown token, database trouble: Flask answers
        environ[ROUTE_KEY] = ROUTE
        status, headers, body = answer(page, 1, now, environ.get("HTTP_IF_NONE_MATCH"))
        if status != 304:
            headers.append(("Content-Length", str(len(body))))
        start_response(_STATUS_LINES[status], headers)
        return [b""] if environ["REQUEST_METHOD"] == "HEAD" else [body]


def install(app) -> None:
    if not isinstance(app.wsgi_app, MarketPageFastPath):
        app.wsgi_app = MarketPageFastPath(app, app.wsgi_app)
    generations.observe(PartyOrg, _org_changed)
    if not event.contains(Session, "before_commit", _bump_org_markets):
        event.listen(Session, "before_commit", _bump_org_markets)

