"""Credential review (audited, scoped) and who may see the photos."""
from app.core.audit import AuditEntry
from app.credentials.queries import shown_counts_by_market
from tests.conftest import at, error_code
from tests.markets.factories import USCC_B


def test_manager_verifies_and_rejects_with_reason(shop, client, db):
    market, manager, stalls, login, merchant_id = shop.held_stall()
    licence = shop.credential(login, merchant_id, long_term=True)
    permit = shop.credential(login, merchant_id, kind="food_business", number="JY1", valid_until="2027-01-01")
    assert shop.verify(manager, licence).get_json()["status"] == "verified"
    response = shop.verify(manager, permit, "reject", expect=422)
    assert error_code(response) == "REASON_REQUIRED"
    assert shop.verify(manager, permit, "reject", "照片模糊").get_json()["status"] == "rejected"
    assert error_code(shop.verify(manager, licence, expect=409)) == "CREDENTIAL_ALREADY_REVIEWED"
    entries = db.session.query(AuditEntry).filter(AuditEntry.action.like("credential.%")).order_by(AuditEntry.id).all()
    assert [(e.action, e.actor_role, e.reason) for e in entries] == [
        ("credential.approve", "market_manager", None), ("credential.reject", "market_manager", "照片模糊")]
    assert entries[1].before == {"status": "pending"} and entries[1].after["status"] == "rejected"


def test_regulator_of_region_verifies_other_region_cannot(shop, auth):
    market, manager, stalls, login, merchant_id = shop.held_stall()
    licence = shop.credential(login, merchant_id, long_term=True)
    outsider = auth.login("reg-ll", role="regulator", scope="region:430281")
    assert error_code(shop.verify(outsider, licence, expect=404)) == "CREDENTIAL_NOT_FOUND"
    regulator = auth.login("reg-gx", role="regulator", scope="region:450000")
    assert shop.verify(regulator, licence).get_json()["status"] == "verified"


def test_manager_of_market_2_cannot_review_in_market_1(shop, client):
    market, manager, stalls, login, merchant_id = shop.held_stall()
    licence = shop.credential(login, merchant_id, long_term=True)
    other = shop.manager(shop.market(name="长洲区市场", region_code="450405"), "manager-2")
    response = shop.verify(other, licence, expect=404)
    assert error_code(response) == "CREDENTIAL_NOT_FOUND"
    assert client.get(f"/api/v1/credentials/{licence}/photo", headers=other.headers).status_code == 404
    assert client.get(f"/api/v1/merchants/{merchant_id}/credentials", headers=other.headers).status_code == 404


def test_merchant_cannot_review_and_other_merchant_sees_nothing(shop, client):
    market, manager, stalls, login, merchant_id = shop.held_stall()
    licence = shop.credential(login, merchant_id, long_term=True)
    assert shop.verify(login, licence, expect=403)
    b_login, b_id = shop.merchant("merchant-b", uscc=USCC_B, name="B 店")
    response = client.get(f"/api/v1/credentials/{licence}/photo", headers=b_login.headers)
    assert response.status_code == 404 and response.mimetype == "application/json"
    assert client.get(f"/api/v1/merchants/{merchant_id}/credentials", headers=b_login.headers).status_code == 404


def test_photos_for_owner_and_manager_and_public_only_when_verified(shop, client):
    market, manager, stalls, login, merchant_id = shop.held_stall()
    licence = shop.credential(login, merchant_id, long_term=True)
    for viewer in (login, manager):
        response = client.get(f"/api/v1/credentials/{licence}/photo", headers=viewer.headers)
        assert response.status_code == 200 and response.mimetype == "image/jpeg"
        assert response.data[:3] == b"\xff\xd8\xff"
    token = stalls[0]["token"]
    badge = client.get(f"/api/v1/public/stalls/{token}").get_json()
    assert badge["items"][0]["documents"] == []  # pending: nothing public yet
    shop.verify(manager, licence)
    badge = client.get(f"/api/v1/public/stalls/{token}").get_json()
    url = badge["items"][0]["documents"][0]["photo_url"]
    path = url.split("://", 1)[1].split("/", 1)[1]
    assert client.get("/" + path).status_code == 200
    assert client.get("/" + path + "?thumb=true").status_code == 200
    # The same key under another stall's token, or a guessed key, is not served.
    assert client.get("/" + path.replace(token, stalls[1]["token"])).status_code == 404
    assert client.get(f"/api/v1/public/stalls/{token}/photos/{'0' * 32}.jpg").status_code == 404
    assert client.get(f"/api/v1/public/stalls/{token}/photos/..%2F..%2Fsecret_key.jpg").status_code == 404


def test_shown_counts_by_market(shop, db, clock):
    clock.set(at("2026-03-01 09:00"))
    market, manager, token, login, merchant_id = shop.trusted_stall(until="2026-06-30")
    counts = shown_counts_by_market([market.id, 999], at("2026-06-30 23:59"))
    assert counts[market.id] == {"licences_shown": 1, "permits_shown": 1}
    assert counts[999] == {"licences_shown": 0, "permits_shown": 0}
    assert shown_counts_by_market([market.id], at("2026-07-01 00:00"))[market.id] == {
        "licences_shown": 1, "permits_shown": 0}
