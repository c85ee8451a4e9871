"""Merchants, stall claims and who may touch what."""
from app.core.audit import AuditEntry
from app.markets.models import Merchant, Stall, StallClaim
from tests.conftest import error_code
from tests.markets.factories import USCC_B


def test_creating_a_merchant_grants_the_merchant_role(shop, client):
    login, merchant_id = shop.merchant()
    me = client.get("/api/v1/me", headers=login.headers).get_json()
    assert "merchant" in {role["role"] for role in me["roles"]}
    body = client.get(f"/api/v1/merchants/{merchant_id}", headers=login.headers).get_json()
    assert body["uscc"] == "91350100M000100Y43" and body["owner_id"] == login.user_id
    assert [m["id"] for m in client.get("/api/v1/merchants", headers=login.headers).get_json()] == [merchant_id]


def test_mass_assignment_of_owner_and_status_is_refused(shop, client, auth, db):
    victim = auth.login("victim")
    login = auth.login("merchant-a")
    response = client.post("/api/v1/merchants", headers=login.headers, json={
        "name": "某店", "kind": "个体工商户", "uscc": "91350100M000100Y43", "operator_name": "张三",
        "owner_id": victim.user_id, "status": "verified"})
    assert response.status_code == 422
    assert db.session.query(Merchant).count() == 0
    market, manager, stalls, login, merchant_id = shop.held_stall()
    response = client.post(f"/api/v1/stalls/{stalls[1]['token']}/claim", headers=login.headers,
                           json={"merchant_id": merchant_id, "status": "confirmed"})
    assert response.status_code == 422
    response = shop.upload(login, merchant_id, headers=None)
    assert response.status_code == 201
    assert response.get_json()["status"] == "pending"


def test_claim_flow_and_audit(shop, client, db):
    market = shop.market()
    manager = shop.manager(market)
    token = shop.stalls(market, manager, ["A-01"])[0]["token"]
    login, merchant_id = shop.merchant()
    claim = shop.claim(login, merchant_id, token).get_json()
    assert claim["status"] == "pending"
    # Retrying the same claim is harmless.
    assert shop.claim(login, merchant_id, token).get_json()["id"] == claim["id"]
    response = client.post(f"/api/v1/stalls/{token}/claim/review", json={"decision": "reject"},
                           headers=manager.headers)
    assert error_code(response) == "REASON_REQUIRED"
    reviewed = shop.review_claim(manager, token).get_json()
    assert reviewed["status"] == "confirmed"
    assert db.session.query(Stall).filter_by(token=token).one().merchant_id == merchant_id
    entry = db.session.query(AuditEntry).filter_by(action="stall_claim.approve").one()
    assert entry.actor_id == manager.user_id and entry.after["status"] == "confirmed"
    assert entry.request_id


def test_second_claim_conflicts_with_specific_codes(shop, client):
    market = shop.market()
    manager = shop.manager(market)
    token = shop.stalls(market, manager, ["A-01"])[0]["token"]
    a_login, a_id = shop.merchant()
    b_login, b_id = shop.merchant("merchant-b", uscc=USCC_B, name="B 店")
    shop.claim(a_login, a_id, token)
    response = shop.claim(b_login, b_id, token, expect=409)
    assert error_code(response) == "STALL_CLAIM_PENDING"
    shop.review_claim(manager, token)
    response = shop.claim(b_login, b_id, token, expect=409)
    assert error_code(response) == "STALL_ALREADY_CLAIMED"


def test_refused_claim_frees_the_stall(shop, db):
    market = shop.market()
    manager = shop.manager(market)
    token = shop.stalls(market, manager, ["A-01"])[0]["token"]
    a_login, a_id = shop.merchant()
    b_login, b_id = shop.merchant("merchant-b", uscc=USCC_B, name="B 店")
    shop.claim(a_login, a_id, token)
    shop.review_claim(manager, token, "reject", "不是该摊位的经营户")
    assert shop.claim(b_login, b_id, token).get_json()["status"] == "pending"
    assert db.session.query(AuditEntry).filter_by(action="stall_claim.reject").one().reason == "不是该摊位的经营户"


def test_merchant_a_cannot_touch_merchant_b(shop, client):
    market, manager, stalls, a_login, a_id = shop.held_stall()
    b_login, b_id = shop.merchant("merchant-b", uscc=USCC_B, name="B 店")
    response = client.get(f"/api/v1/merchants/{b_id}", headers=a_login.headers)
    assert response.status_code == 404 and "B 店" not in response.get_data(as_text=True)
    # Claim a stall in B's name.
    response = client.post(f"/api/v1/stalls/{stalls[1]['token']}/claim", json={"merchant_id": b_id},
                           headers=a_login.headers)
    assert response.status_code == 404 and error_code(response) == "MERCHANT_NOT_FOUND"
    # B's credentials: neither list nor upload.
    assert client.get(f"/api/v1/merchants/{b_id}/credentials", headers=a_login.headers).status_code == 404
    assert shop.upload(a_login, b_id, number=USCC_B).status_code == 404
    # B cannot review A's claim or reissue stalls.
    assert client.post(f"/api/v1/stalls/{stalls[0]['token']}/claim/review", json={"decision": "approve"},
                       headers=b_login.headers).status_code == 403


def test_manager_of_other_market_cannot_review_or_view(shop, client, auth):
    market = shop.market()
    manager = shop.manager(market)
    token = shop.stalls(market, manager, ["A-01"])[0]["token"]
    login, merchant_id = shop.merchant()
    shop.claim(login, merchant_id, token)
    other = shop.manager(shop.market(name="醴陵市陶瓷市场", region_code="430281"), "manager-2")
    response = client.post(f"/api/v1/stalls/{token}/claim/review", json={"decision": "approve"},
                           headers=other.headers)
    assert response.status_code == 404 and error_code(response) == "STALL_NOT_FOUND"
    assert client.get(f"/api/v1/merchants/{merchant_id}", headers=other.headers).status_code == 404
    # The market's own manager sees the claiming entity.
    assert client.get(f"/api/v1/merchants/{merchant_id}", headers=manager.headers).status_code == 200
    regulator = auth.login("reg-zz", role="regulator", scope="region:430200")
    assert client.get(f"/api/v1/merchants/{merchant_id}", headers=regulator.headers).status_code == 404
    regulator = auth.login("reg-wz", role="regulator", scope="region:450400")
    assert client.get(f"/api/v1/merchants/{merchant_id}", headers=regulator.headers).status_code == 200


def test_one_merchant_may_hold_several_stalls(shop, db):
    market, manager, stalls, login, merchant_id = shop.held_stall()
    shop.claim(login, merchant_id, stalls[1]["token"])
    shop.review_claim(manager, stalls[1]["token"])
    assert db.session.query(Stall).filter_by(merchant_id=merchant_id).count() == 2
    assert db.session.query(StallClaim).filter_by(status="confirmed").count() == 2
