"""A party organisation tied to a market is a 示范市场 criterion shown on the market's public page:
creating, moving or removing one moves the page's version in the same transaction, so /m/<token>
shows it at once (every worker at its next version check), not after the safety TTL."""
from sqlalchemy import select

from app.markets.models import Market
from app.orgs.models import PartyOrg
from tests.conftest import at

SUSPENDED = "称号暂停显示：未满足市场已建立党组织"


def _version(db, market) -> int:
    db.session.expire_all()
    return db.session.scalar(select(Market.page_version).where(Market.id == market.id))


def test_an_org_created_moved_and_removed_shows_on_the_market_page_at_once(shop, client, auth, clock, db):
    clock.set(at("2026-03-01 09:00"))
    market, manager, token, login, merchant_id = shop.trusted_stall(until="2026-12-31", pledge=True)
    other = shop.market(name="梧州市万秀区富民市场")
    regulator = auth.login("reg-wx", role="regulator", scope="region:450403")
    assert client.put("/api/v1/models/criteria", headers=regulator.headers, json={
        "region": "450403", "stall": {"pledge_days": 0}, "market": {"min_stalls": 1, "full_badge_pct": 100}},
    ).status_code == 200
    page = f"/m/{market.token}"
    assert client.get(page).status_code == 200  # cached in this worker from here on
    before = _version(db, market), _version(db, other)

    # Created through the organisations API, for this market: its page's version moves.
    created = client.post("/api/v1/orgs", headers=regulator.headers, json={
        "name": "东中市场党支部", "kind": "branch", "sector": "market", "region_code": "450403",
        "market_id": market.id})
    assert created.status_code == 201, created.get_json()
    assert _version(db, market) == before[0] + 1 and _version(db, other) == before[1]
    conferred = client.post("/api/v1/models", headers=regulator.headers,
                            json={"kind": "market", "target": str(market.id), "citation": "放心市场建设先进"})
    assert conferred.status_code == 201, conferred.get_json()
    shown = client.get(page)
    assert "放心市场建设先进" in shown.get_data(as_text=True)

    # Moved to another market: both pages' versions move; this one suspends the title at once.
    versions = _version(db, market), _version(db, other)
    org = db.session.get(PartyOrg, created.get_json()["id"])
    org.market_id = other.id
    db.session.commit()
    assert (_version(db, market), _version(db, other)) == (versions[0] + 1, versions[1] + 1)
    moved = client.get(page)
    assert moved.headers["ETag"] != shown.headers["ETag"] and SUSPENDED in moved.get_data(as_text=True)

    # Back again: the title shows; removed: suspended again.
    org = db.session.get(PartyOrg, org.id)
    org.market_id = market.id
    db.session.commit()
    assert SUSPENDED not in client.get(page).get_data(as_text=True)
    version = _version(db, market)
    db.session.delete(db.session.get(PartyOrg, org.id))
    db.session.commit()
    assert _version(db, market) == version + 1
    assert SUSPENDED in client.get(page).get_data(as_text=True)


def test_a_rolled_back_org_change_moves_nothing(shop, db):
    market = shop.market()
    version = _version(db, market)
    db.session.add(PartyOrg(name="东中市场党支部", kind="branch", sector="market", region_code="450403",
                            market_id=market.id))
    db.session.flush()
    db.session.rollback()
    db.session.add(PartyOrg(name="骑手党支部", kind="branch", sector="rider", region_code="450403"))
    db.session.commit()  # an organisation of no market: no page to move
    assert _version(db, market) == version
