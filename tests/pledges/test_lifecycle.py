"""The pledge state machine: every legal and illegal transition, each legal one audited."""
from datetime import timedelta

from sqlalchemy import func, select

from app.core.audit import AuditEntry
from app.pledges.models import Pledge
from tests.conftest import at, error_code


def _status(world, pledge_id):
    response = world.client.get(f"/api/v1/pledges/{pledge_id}", headers=world.owner.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["status"]


def test_every_transition_legal_and_illegal(world, clock, db):
    clock.set(at("2026-03-01 09:00"))

    first = world.sign()
    assert first.status_code == 201, first.get_json()
    first = first.get_json()
    assert first["status"] == "pending" and first["market_id"] == world.market.id
    assert first["items"] == world.template.items and first["template_version"] == 1

    again = world.sign()
    assert again.status_code == 409 and error_code(again) == "PLEDGE_ALREADY_ACTIVE"
    assert again.get_json()["error"]["details"] == {"pledge_id": first["id"], "status": "pending"}

    no_reason = world.review(first["id"], "reject")
    assert no_reason.status_code == 422 and error_code(no_reason) == "REASON_REQUIRED"
    blank_reason = world.review(first["id"], "reject", reason="   ")
    assert blank_reason.status_code == 422 and error_code(blank_reason) == "REASON_REQUIRED"
    assert _status(world, first["id"]) == "pending"

    rejected = world.review(first["id"], "reject", reason="签署人与经营者不一致")
    assert rejected.status_code == 200 and rejected.get_json()["status"] == "rejected"
    assert rejected.get_json()["review_reason"] == "签署人与经营者不一致"

    approve_rejected = world.review(first["id"], "approve")
    assert approve_rejected.status_code == 409 and error_code(approve_rejected) == "PLEDGE_NOT_PENDING"
    revoke_rejected = world.revoke(first["id"])
    assert revoke_rejected.status_code == 409 and error_code(revoke_rejected) == "PLEDGE_NOT_IN_FORCE"

    clock.advance(timedelta(hours=1))
    second = world.sign(signer_name="李小兰")
    assert second.status_code == 201, second.get_json()
    second = second.get_json()

    revoke_pending = world.revoke(second["id"])
    assert revoke_pending.status_code == 409 and error_code(revoke_pending) == "PLEDGE_NOT_IN_FORCE"

    approved = world.review(second["id"], "approve")
    assert approved.status_code == 200, approved.get_json()
    approved = approved.get_json()
    assert approved["status"] == "approved"
    assert approved["valid_from"].startswith("2026-03-01T10:00:00+08:00")
    assert approved["valid_until"].startswith("2027-03-02T00:00:00+08:00")
    assert approved["valid_through"] == "2027-03-01"

    sign_in_force = world.sign()
    assert sign_in_force.status_code == 409 and error_code(sign_in_force) == "PLEDGE_ALREADY_ACTIVE"
    approve_twice = world.review(second["id"], "approve")
    assert approve_twice.status_code == 409 and error_code(approve_twice) == "PLEDGE_NOT_PENDING"

    revoke_no_reason = world.revoke(second["id"], reason=None)
    assert revoke_no_reason.status_code == 422 and error_code(revoke_no_reason) == "VALIDATION_ERROR"
    revoke_blank = world.revoke(second["id"], reason="  ")
    assert revoke_blank.status_code == 422 and error_code(revoke_blank) == "REASON_REQUIRED"
    revoked = world.revoke(second["id"], reason="短斤少两投诉经查属实")
    assert revoked.status_code == 200 and revoked.get_json()["status"] == "revoked"
    assert revoked.get_json()["revoke_reason"] == "短斤少两投诉经查属实"

    for decision, reason in (("approve", None), ("reject", "不予通过")):
        review_revoked = world.review(second["id"], decision, reason=reason)
        assert review_revoked.status_code == 409 and error_code(review_revoked) == "PLEDGE_NOT_PENDING"
    revoke_twice = world.revoke(second["id"])
    assert revoke_twice.status_code == 409 and error_code(revoke_twice) == "PLEDGE_NOT_IN_FORCE"

    third = world.sign().get_json()
    assert world.review(third["id"], "approve").status_code == 200

    # Expiry by time: in force through 2027-03-01 (local), expired from the next local midnight.
    clock.set(at("2027-03-01 23:59:59"))
    assert _status(world, third["id"]) == "approved"
    renewal = world.sign()  # within 30 days of the end: a renewal (tests/pledges/test_renewal.py)
    assert renewal.status_code == 201, renewal.get_json()
    clock.set(at("2027-03-02 00:00"))
    assert _status(world, third["id"]) == "expired"
    revoke_expired = world.revoke(third["id"])
    assert revoke_expired.status_code == 409 and error_code(revoke_expired) == "PLEDGE_NOT_IN_FORCE"
    assert revoke_expired.get_json()["error"]["details"]["status"] == "expired"
    review_expired = world.review(third["id"], "approve")
    assert review_expired.status_code == 409 and error_code(review_expired) == "PLEDGE_NOT_PENDING"

    assert error_code(world.sign()) == "PLEDGE_ALREADY_ACTIVE"  # the renewal is under review
    db.session.expire_all()
    assert db.session.get(Pledge, third["id"]).status_at(clock.now()) == "expired"

    history = world.client.get(f"/api/v1/merchants/{world.merchant.id}/pledges",
                               headers=world.owner.headers).get_json()
    assert [p["status"] for p in history["items"]] == ["pending", "expired", "revoked", "rejected"]
    assert history["total"] == 4


def test_every_transition_is_audited_with_actor_role_reason_and_request(world, clock, db):
    clock.set(at("2026-03-01 09:00"))
    first = world.sign().get_json()
    rejected = world.client.post(f"/api/v1/pledges/{first['id']}/review",
                                 json={"decision": "reject", "reason": "信息不全"},
                                 headers={**world.manager.headers, "X-Request-ID": "req-reject-0001"})
    second = world.sign().get_json()
    world.review(second["id"], "approve", reason="材料齐全")
    world.revoke(second["id"], reason="投诉属实")

    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.target_type == "pledge")
                                 .order_by(AuditEntry.id)).all()
    assert [(e.action, e.target_id) for e in entries] == [
        ("pledge.sign", str(first["id"])), ("pledge.reject", str(first["id"])),
        ("pledge.sign", str(second["id"])), ("pledge.approve", str(second["id"])),
        ("pledge.revoke", str(second["id"])),
    ]
    reject = entries[1]
    assert reject.actor_id == world.manager.user_id and reject.actor_role == "market_manager"
    assert reject.before["status"] == "pending" and reject.after["status"] == "rejected"
    assert reject.reason == "信息不全" and reject.request_id == rejected.headers["X-Request-ID"]
    assert reject.request_id != "req-reject-0001"  # the client's id is not the audit row's
    approve, revoke = entries[3], entries[4]
    assert approve.after["status"] == "approved" and approve.after["valid_until"]
    assert approve.reason == "材料齐全"
    assert revoke.before["status"] == "approved" and revoke.after["status"] == "revoked"
    assert revoke.reason == "投诉属实" and all(e.request_id for e in entries)
    # a refused transition writes nothing
    before = db.session.scalar(select(func.count()).select_from(AuditEntry))
    assert world.revoke(first["id"]).status_code == 409
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == before


def test_transitions_bump_the_badge_version_of_the_entitys_stalls(world, db):
    from app.markets.models import Stall

    def version():
        db.session.expire_all()
        return db.session.get(Stall, world.stall.id).badge_version

    start = version()
    pledge = world.sign().get_json()
    after_sign = version()
    assert after_sign > start
    world.review(pledge["id"], "approve")
    after_approve = version()
    assert after_approve > after_sign
    world.revoke(pledge["id"])
    assert version() > after_approve
