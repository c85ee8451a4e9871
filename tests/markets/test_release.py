"""Issue 11 item 3: a tenancy ends (the merchant leaves, or the market ends it), the badge stops
showing the old operator at once, and a new tenant can claim the stall; the figures follow."""
from app.core.audit import AuditEntry
from app.reminders.models import Notification
from tests.conftest import at, error_code
from tests.markets.factories import USCC_B


def test_release_and_reclaim(shop, client, clock, db, auth):
    clock.set(at("2026-03-01 09:00"))
    market, manager, token, login, merchant_id = shop.trusted_stall(until="2027-06-30")
    assert client.get(f"/api/v1/public/stalls/{token}").get_json()["merchant"]["name"] == "万秀区李记蔬菜店"
    newcomer, newcomer_id = shop.merchant("merchant-b", uscc=USCC_B, name="万秀区张记水果店")
    assert error_code(shop.claim(newcomer, newcomer_id, token, expect=409)) == "STALL_ALREADY_CLAIMED"
    stranger = auth.login("stranger")
    body = {"reason": "租约到期，不再续租"}
    assert error_code(client.post(f"/api/v1/stalls/{token}/release", json=body, headers=stranger.headers)) \
        in ("FORBIDDEN", "STALL_NOT_FOUND")
    assert error_code(client.post(f"/api/v1/stalls/{token}/release", json={}, headers=login.headers)) == \
        "VALIDATION_ERROR"
    released = client.post(f"/api/v1/stalls/{token}/release", json=body, headers=login.headers)
    assert released.status_code == 200 and released.get_json()["status"] == "released"
    assert released.get_json()["release_reason"] == "租约到期，不再续租"
    again = client.post(f"/api/v1/stalls/{token}/release", json=body, headers=manager.headers)
    assert again.status_code == 409 and error_code(again) == "STALL_NOT_HELD"
    badge = client.get(f"/api/v1/public/stalls/{token}").get_json()
    assert badge["merchant"] is None  # the old operator's documents are no longer shown
    stalls = client.get(f"/api/v1/markets/{market.id}/stalls", headers=manager.headers).get_json()["items"]
    assert stalls[0]["claim_status"] == "unclaimed"
    entry = db.session.query(AuditEntry).filter_by(action="stall.release").one()
    assert entry.actor_role == "merchant" and entry.reason == "租约到期，不再续租"
    # A new tenant claims it and the market confirms.
    shop.claim(newcomer, newcomer_id, token)
    shop.review_claim(manager, token)
    assert client.get(f"/api/v1/public/stalls/{token}").get_json()["merchant"]["name"] == "万秀区张记水果店"
    # The market ends the new tenancy: the merchant is told why.
    ended = client.post(f"/api/v1/stalls/{token}/release", json={"reason": "违规转租"}, headers=manager.headers)
    assert ended.status_code == 200
    [notice] = db.session.query(Notification).filter_by(user_id=newcomer.user_id, kind="stall_released").all()
    assert "违规转租" in notice.body and "A-01" in notice.body
