"""Issue 11 item 4: every decision that affects someone reaches them: an inbox entry (always),
pushed as a subscribe message when they have a consent left, written in the decision's own
transaction and once per decision."""
from app.orgs.models import Membership
from app.reminders.models import Notification
from tests.conftest import at
from tests.orgs.factories import add_member, create_org


def _told(db, user_id, kind):
    return db.session.query(Notification).filter_by(user_id=user_id, kind=kind).order_by(Notification.id).all()


def test_claim_rejection_tells_the_merchant_why(shop, client, clock, db):
    clock.set(at("2026-03-01 09:00"))
    market = shop.market()
    manager = shop.manager(market)
    token = shop.stalls(market, manager, ["A-01"])[0]["token"]
    login, merchant_id = shop.merchant()
    shop.claim(login, merchant_id, token)
    shop.review_claim(manager, token, decision="reject", reason="租赁合同上不是该经营者")
    [notice] = _told(db, login.user_id, "claim_decision")
    assert "A-01" in notice.body and "租赁合同上不是该经营者" in notice.body
    assert notice.wx_data["phrase2"] == "未通过" and notice.page.endswith(token)


def test_membership_decisions_and_revocation_reach_the_member(client, auth, db, regions):
    org = create_org()
    member = add_member("m-1", org, status="pending")
    membership = db.session.query(Membership).filter_by(user_id=member.id).one()
    sec = auth.login("sec", role="branch_secretary", scope=f"org:{org.id}")
    assert client.post(f"/api/v1/memberships/{membership.id}/review", json={"decision": "approve"},
                       headers=sec.headers).status_code == 200
    assert client.post(f"/api/v1/memberships/{membership.id}/revoke", json={"reason": "组织关系已转出"},
                       headers=sec.headers).status_code == 200
    notices = _told(db, member.id, "membership_decision")
    assert [n.wx_data["phrase2"] for n in notices] == ["已通过", "已撤销"]
    assert "组织关系已转出" in notices[1].body and "东中市场党支部" in notices[0].body


def test_pledge_approval_says_until_when(shop, clock, db):
    clock.set(at("2026-03-01 09:00"))
    market, manager, stalls, login, merchant_id = shop.held_stall()
    shop.approved_pledge(login, merchant_id, manager)
    [notice] = _told(db, login.user_id, "pledge_decision")
    assert "2027-03-01" in notice.body or "2027-02-28" in notice.body


def test_the_consumer_hears_the_outcome_of_their_feedback(shop, client, auth, clock, db):
    clock.set(at("2026-03-01 09:00"))
    market, manager, stalls, login, merchant_id = shop.held_stall()
    consumer = auth.login("consumer")
    created = client.post(f"/api/v1/public/stalls/{stalls[0]['token']}/feedback",
                          json={"category": "缺斤短两", "text": "称重少了二两"}, headers=consumer.headers)
    feedback_id = created.get_json()["id"]
    assert client.post(f"/api/v1/feedback/{feedback_id}/review", json={"decision": "uphold", "reason": "复秤属实"},
                       headers=manager.headers).status_code == 200
    [notice] = _told(db, consumer.user_id, "feedback_decision")
    assert "复秤属实" in notice.body and notice.wx_data["phrase2"] == "已核实"
    inbox = client.get("/api/v1/me/notifications", headers=consumer.headers).get_json()
    assert inbox["unread"] == 1 and inbox["items"][0]["title"] == "您反映的问题有处理结果"


def test_a_notice_is_pushed_when_a_consent_is_left_and_kept_in_the_inbox_when_not(shop, client, clock, db, wechat_sim):
    from app.reminders.dispatcher import dispatch

    clock.set(at("2026-03-01 09:00"))
    market = shop.market()
    manager = shop.manager(market)
    tokens = [s["token"] for s in shop.stalls(market, manager, ["A-01", "A-02"])]
    login, merchant_id = shop.merchant()
    assert client.post("/api/v1/me/subscriptions", json={"template_keys": ["review_result"]},
                       headers=login.headers).status_code in (200, 201)
    for token in tokens:
        shop.claim(login, merchant_id, token)
        shop.review_claim(manager, token)
    db.session.commit()
    dispatch(clock.now())
    statuses = sorted(n.status for n in _told(db, login.user_id, "claim_decision"))
    assert statuses == ["no_consent", "sent"]  # one consent, two decisions: both in the inbox
    assert len(client.get("/api/v1/me/notifications", headers=login.headers).get_json()["items"]) == 2
