"""Issue 11 items 3, 4 and 6: an expired document is refused at upload and at review; one that
expires within 30 days is taken with a warning; a verified document can be revoked (once, with a
reason, by the market's manager or a regulator); the owner is told of every decision."""
from app.core.audit import AuditEntry
from app.reminders.models import Notification
from tests.conftest import at, error_code


def _notices(db, user_id):
    return db.session.query(Notification).filter_by(user_id=user_id, kind="credential_decision") \
        .order_by(Notification.id).all()


def test_an_expired_document_is_refused_with_its_date(shop, clock, db):
    clock.set(at("2026-03-01 09:00"))
    market, manager, stalls, login, merchant_id = shop.held_stall()
    refused = shop.upload(login, merchant_id, kind="food_business", number="JY1", valid_until="2026-02-28")
    assert refused.status_code == 422 and error_code(refused) == "CREDENTIAL_EXPIRED"
    assert "2026-02-28" in refused.get_json()["error"]["message"]
    assert "valid_until" in refused.get_json()["error"]["details"]["fields"]
    taken = shop.upload(login, merchant_id, kind="food_business", number="JY1", valid_until="2026-03-01")
    assert taken.status_code == 201  # valid through today
    assert taken.get_json()["warning"]["code"] == "CREDENTIAL_EXPIRING_SOON"
    assert taken.get_json()["warning"]["days_left"] == 0
    later = shop.upload(login, merchant_id, kind="food_business", number="JY2", valid_until="2026-03-31")
    assert later.get_json()["warning"]["days_left"] == 30
    assert shop.upload(login, merchant_id, kind="food_business", number="JY3",
                       valid_until="2026-04-01").get_json()["warning"] is None
    assert shop.upload(login, merchant_id, long_term=True).get_json()["warning"] is None


def test_a_document_that_expired_while_pending_is_not_verified(shop, clock, db):
    clock.set(at("2026-03-01 09:00"))
    market, manager, stalls, login, merchant_id = shop.held_stall()
    permit = shop.credential(login, merchant_id, kind="food_business", number="JY1", valid_until="2026-03-05")
    clock.set(at("2026-03-06 09:00"))
    refused = shop.verify(manager, permit, expect=422)
    assert error_code(refused) == "CREDENTIAL_EXPIRED"
    rejected = shop.verify(manager, permit, decision="reject", reason="证照已过期")
    assert rejected.get_json()["status"] == "rejected"


def test_revoking_a_verified_document_takes_it_off_the_badge_and_tells_the_owner(shop, client, clock, db, auth):
    clock.set(at("2026-03-01 09:00"))
    market, manager, token, login, merchant_id = shop.trusted_stall(until="2026-12-31")
    permits = client.get(f"/api/v1/merchants/{merchant_id}/credentials", headers=login.headers).get_json()
    permit_id = next(c["id"] for c in permits if c["kind"] == "food_business")
    def shown_permits():
        permits = client.get(f"/api/v1/public/stalls/{token}").get_json()["items"][1]
        return [d["kind"] for d in permits["documents"]]

    assert shown_permits() == ["food_business"]
    outsider = auth.login("other-manager", role="market_manager", scope=f"market:{shop.market(name='别的市场').id}")
    body = {"reason": "发证机关已注销该许可证"}
    assert error_code(client.post(f"/api/v1/credentials/{permit_id}/revoke", json=body,
                                  headers=outsider.headers)) == "CREDENTIAL_NOT_FOUND"
    assert error_code(client.post(f"/api/v1/credentials/{permit_id}/revoke", json={"reason": " "},
                                  headers=manager.headers)) in ("REASON_REQUIRED", "VALIDATION_ERROR")
    done = client.post(f"/api/v1/credentials/{permit_id}/revoke", json=body, headers=manager.headers)
    assert done.status_code == 200 and done.get_json()["status"] == "revoked"
    again = client.post(f"/api/v1/credentials/{permit_id}/revoke", json=body, headers=manager.headers)
    assert again.status_code == 409 and error_code(again) == "CREDENTIAL_NOT_VERIFIED"
    assert shown_permits() == []
    entry = db.session.query(AuditEntry).filter_by(action="credential.revoke").one()
    assert entry.actor_id == manager.user_id and entry.reason == "发证机关已注销该许可证"
    notices = _notices(db, login.user_id)
    # Two approvals (licence, permit) and the revocation, each with its own entry.
    assert [n.wx_data["phrase2"] for n in notices] == ["已通过", "已通过", "已撤销"]
    assert "发证机关已注销该许可证" in notices[-1].body and notices[-1].template_key == "review_result"
    inbox = client.get("/api/v1/me/notifications", headers=login.headers).get_json()["items"]
    assert inbox[0]["title"].endswith("审核结果") and "已被撤销" in inbox[0]["body"]


def test_a_rejection_tells_the_owner_why_and_a_rolled_back_decision_tells_nobody(shop, client, clock, db):
    clock.set(at("2026-03-01 09:00"))
    market, manager, stalls, login, merchant_id = shop.held_stall()
    permit = shop.credential(login, merchant_id, kind="food_business", number="JY1", valid_until="2026-12-31")
    failed = client.post(f"/api/v1/credentials/{permit}/review", json={"decision": "reject"},
                         headers=manager.headers)  # no reason: refused, rolled back
    assert failed.status_code == 422 and _notices(db, login.user_id) == []
    shop.verify(manager, permit, decision="reject", reason="照片模糊，请重新拍摄")
    notices = _notices(db, login.user_id)
    assert len(notices) == 1 and "照片模糊，请重新拍摄" in notices[0].body and "未通过" in notices[0].body
