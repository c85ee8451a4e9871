"""Bulk stall creation, listing, tokens and reissue."""
import re

from app.core.audit import AuditEntry
from app.markets.models import Stall, VoidedStallToken
from tests.conftest import error_code


def test_manager_creates_stalls_with_unguessable_tokens(shop, db):
    market = shop.market()
    manager = shop.manager(market)
    items = shop.stalls(market, manager, ["A-01", "A-02", "A-03"])
    assert [s["number"] for s in items] == ["A-01", "A-02", "A-03"]
    tokens = [s["token"] for s in items]
    assert len(set(tokens)) == 3
    for token in tokens:
        assert re.fullmatch(r"[0-9A-Za-z]{10,32}", token)
        assert len(token) * 5.95 >= 59  # base62 bits per character
    assert db.session.query(Stall).count() == 3


def test_duplicates_are_reported_and_nothing_is_created(shop, client, db):
    market = shop.market()
    manager = shop.manager(market)
    response = client.post(f"/api/v1/markets/{market.id}/stalls", json={"numbers": ["A-01", "A-02", "A-01"]},
                           headers=manager.headers)
    assert error_code(response) == "STALL_NUMBER_DUPLICATE"
    assert response.get_json()["error"]["details"]["numbers"] == ["A-01"]
    shop.stalls(market, manager, ["A-01"])
    response = client.post(f"/api/v1/markets/{market.id}/stalls", json={"numbers": ["A-02", "A-01"]},
                           headers=manager.headers)
    assert response.status_code == 409 and error_code(response) == "STALL_NUMBER_EXISTS"
    assert response.get_json()["error"]["details"]["numbers"] == ["A-01"]
    assert db.session.query(Stall).count() == 1


def test_limit_per_call(shop, client):
    market = shop.market()
    manager = shop.manager(market)
    response = client.post(f"/api/v1/markets/{market.id}/stalls",
                           json={"numbers": [f"N{i}" for i in range(501)]}, headers=manager.headers)
    assert response.status_code == 422
    assert len(shop.stalls(market, manager, [f"N{i}" for i in range(500)])) == 500


def test_rider_cannot_create_stalls_and_other_manager_is_out_of_scope(shop, client, auth):
    market = shop.market()
    other = shop.market(name="醴陵市陶瓷市场", region_code="430281")
    rider = auth.login("rider-1", role="rider")
    response = client.post(f"/api/v1/markets/{market.id}/stalls", json={"numbers": ["A-01"]}, headers=rider.headers)
    assert response.status_code == 403 and error_code(response) == "FORBIDDEN"
    other_manager = shop.manager(other, "manager-2")
    response = client.post(f"/api/v1/markets/{market.id}/stalls", json={"numbers": ["A-01"]},
                           headers=other_manager.headers)
    assert response.status_code == 404 and error_code(response) == "MARKET_NOT_FOUND"
    assert client.post(f"/api/v1/markets/{market.id}/stalls", json={"numbers": ["A-01"]}).status_code == 401


def test_regulator_of_region_creates_stalls(shop, auth):
    market = shop.market()
    regulator = auth.login("reg-wz", role="regulator", scope="region:450400")
    assert shop.stalls(market, regulator, ["C-01"])[0]["number"] == "C-01"


def test_list_shows_claim_and_badge_status(shop, client):
    market, manager, stalls, login, merchant_id = shop.held_stall(numbers=("A-01", "A-02", "A-03"))
    other_login, other_id = shop.merchant("merchant-b", uscc="91110000802100433B", name="B 店")
    shop.claim(other_login, other_id, stalls[1]["token"])
    response = client.get(f"/api/v1/markets/{market.id}/stalls?per_page=2", headers=manager.headers)
    body = response.get_json()
    assert response.status_code == 200 and body["total"] == 3 and len(body["items"]) == 2
    first, second = body["items"]
    assert first["claim_status"] == "confirmed" and first["merchant"]["id"] == merchant_id
    assert first["badge"]["verdict"] == "未公示"
    assert second["claim_status"] == "pending" and second["pending_claim"]["merchant_id"] == other_id
    page2 = client.get(f"/api/v1/markets/{market.id}/stalls?per_page=2&page=2", headers=manager.headers).get_json()
    assert page2["items"][0]["claim_status"] == "unclaimed"
    assert page2["items"][0]["badge"]["reasons"] == ["该摊位暂无登记的经营者"]


def test_reissue_voids_old_token_and_is_audited(shop, client, db):
    market = shop.market()
    manager = shop.manager(market)
    old = shop.stalls(market, manager, ["A-01"])[0]["token"]
    assert client.get(f"/api/v1/public/stalls/{old}").status_code == 200
    response = client.post(f"/api/v1/stalls/{old}/reissue", headers=manager.headers)
    assert response.status_code == 200
    new = response.get_json()["token"]
    assert new != old and re.fullmatch(r"[0-9A-Za-z]{10,32}", new)
    gone = client.get(f"/api/v1/public/stalls/{old}")
    assert gone.status_code == 410
    assert error_code(gone) == "STALL_TOKEN_VOID"
    assert gone.get_json()["error"]["message"] == "此二维码已作废"
    page = client.get(f"/s/{old}")
    assert page.status_code == 410
    html = page.get_data(as_text=True)
    assert "此二维码已作废" in html and new not in html and "<a " not in html
    assert client.get(f"/api/v1/public/stalls/{new}").status_code == 200
    assert db.session.get(VoidedStallToken, old) is not None
    entry = db.session.query(AuditEntry).filter_by(action="stall.reissue_token").one()
    assert entry.actor_role == "market_manager" and entry.before == {"token": old}
    # The old token can no longer be managed either.
    assert client.post(f"/api/v1/stalls/{old}/reissue", headers=manager.headers).status_code == 410


def test_unknown_token_is_404(client, regions):
    response = client.get("/api/v1/public/stalls/NoSuchToken123")
    assert response.status_code == 404 and error_code(response) == "STALL_NOT_FOUND"
    assert client.get("/s/NoSuchToken123").status_code == 404
    assert client.get("/api/v1/public/stalls/" + "x" * 200).status_code == 404


def test_reissue_needs_manager_of_that_market(shop, client, auth):
    market = shop.market()
    manager = shop.manager(market)
    token = shop.stalls(market, manager, ["A-01"])[0]["token"]
    other = shop.manager(shop.market(name="长洲区市场", region_code="450405"), "manager-2")
    assert error_code(client.post(f"/api/v1/stalls/{token}/reissue", headers=other.headers)) == "STALL_NOT_FOUND"
    merchant = auth.login("merchant-x", role="merchant")
    # Without the role at all the route refuses before looking anything up: an honest 403.
    assert client.post(f"/api/v1/stalls/{token}/reissue", headers=merchant.headers).status_code == 403
