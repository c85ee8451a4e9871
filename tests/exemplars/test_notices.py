"""A 示范 title conferred or withdrawn reaches whoever holds it (PRODUCT.md: every decision that
affects a person): the owner of the stall's business entity, or the market's managers — an inbox
entry always, a subscribe message when a consent is left, written in the decision's transaction."""
from sqlalchemy import select

from app.reminders.models import Notification
from tests.conftest import at, error_code
from tests.exemplars.test_market_page import _model_market


def _told(db, user_id):
    return list(db.session.scalars(select(Notification).where(
        Notification.user_id == user_id, Notification.kind == "exemplar_decision").order_by(Notification.id)))


def test_the_stall_s_holder_hears_of_the_conferral_and_the_withdrawal(shop, client, auth, clock, db, wechat_sim):
    from app.reminders.dispatcher import dispatch

    clock.set(at("2026-01-05 09:00"))
    market, manager, token, login, merchant_id = shop.trusted_stall(until="2029-12-31", pledge=True)
    regulator = auth.login("reg-wx", role="regulator", scope="region:450403")
    h = regulator.headers
    db.session.commit()
    dispatch(clock.now())  # the claim's, credentials' and pledge's notices go first
    assert client.post("/api/v1/me/subscriptions", json={"template_keys": ["review_result"]},
                       headers=login.headers).status_code in (200, 201)
    confer = {"kind": "stall", "target": token, "citation": "亮照亮证齐全，诚信经营。"}
    refused = client.post("/api/v1/models", json=confer, headers=h)  # the pledge is days old, not 180
    assert error_code(refused) == "EXEMPLAR_CRITERIA_NOT_MET" and _told(db, login.user_id) == []
    client.put("/api/v1/models/criteria", json={"region": "450403", "stall": {"pledge_days": 0}}, headers=h)
    risky = client.post("/api/v1/models", json={**confer, "citation": "这里有违禁词"}, headers=h)
    assert error_code(risky) == "CONTENT_RISKY" and _told(db, login.user_id) == []

    title = client.post("/api/v1/models", json=confer, headers=h).get_json()
    [notice] = _told(db, login.user_id)
    assert notice.title == "示范称号已授予" and notice.wx_data["phrase2"] == "已授予"
    assert "“示范摊位”称号已授予梧州市万秀区东中农贸市场 A-01 号摊位（万秀区李记蔬菜店）" in notice.body
    assert "有效期至 2027-01-04" in notice.body and "授予理由：亮照亮证齐全，诚信经营。称号" in notice.body
    assert notice.page == f"pages/stall/index?token={token}" and notice.subject == f"exemplar:{title['id']}"
    db.session.commit()
    dispatch(clock.now())
    db.session.refresh(notice)
    assert notice.status == "sent"  # the consent was there: pushed, and kept in the inbox
    inbox = client.get("/api/v1/me/notifications", headers=login.headers).get_json()
    assert inbox["items"][0]["title"] == "示范称号已授予"

    clock.set(at("2026-02-01 10:00"))
    assert client.post(f"/api/v1/models/{title['id']}/withdraw", json={"reason": "经营者要求撤销"},
                       headers=h).status_code == 200
    withdrawn = _told(db, login.user_id)[-1]
    assert withdrawn.title == "示范称号已撤销" and withdrawn.wx_data["phrase2"] == "已撤销"
    assert "A-01 号摊位（万秀区李记蔬菜店）的“示范摊位”称号已被撤销" in withdrawn.body
    assert withdrawn.body.endswith("原因：经营者要求撤销") and withdrawn.wx_data["thing3"] == "经营者要求撤销"
    db.session.commit()
    dispatch(clock.now())
    db.session.refresh(withdrawn)
    assert withdrawn.status == "no_consent"  # one consent, two decisions: the second stays in the inbox
    # A refused withdrawal tells nobody.
    again = client.post(f"/api/v1/models/{title['id']}/withdraw", json={"reason": "再撤一次"}, headers=h)
    assert error_code(again) == "EXEMPLAR_NOT_ACTIVE" and len(_told(db, login.user_id)) == 2
    assert _told(db, manager.user_id) == []  # a stall's title is its holder's news, not the manager's


def test_the_market_s_managers_hear_of_its_title(shop, client, auth, clock, db):
    from app.identity.models import RoleGrant

    market, manager, token, regulator = _model_market(shop, auth, clock, db)
    deputy = shop.manager(market, openid="manager-deputy")
    former = shop.manager(market, openid="manager-former")
    grant = db.session.scalar(select(RoleGrant).where(RoleGrant.user_id == former.user_id))
    grant.revoked_at = clock.now()
    db.session.commit()
    conferred = client.post("/api/v1/models", headers=regulator.headers,
                            json={"kind": "market", "target": str(market.id), "citation": "放心市场建设先进"})
    assert conferred.status_code == 201, conferred.get_json()
    for login in (manager, deputy):
        [notice] = _told(db, login.user_id)
        assert notice.body.startswith(f"“示范市场”称号已授予{market.name}，有效期至 2027-02-28。")
        assert "称号在市场公示页显示" in notice.body and notice.page == f"pages/review/index?market_id={market.id}"
    assert _told(db, former.user_id) == []
    title_id = conferred.get_json()["id"]
    assert client.post(f"/api/v1/models/{title_id}/withdraw", json={"reason": "发生食品安全事件"},
                       headers=regulator.headers).status_code == 200
    for login in (manager, deputy):
        notice = _told(db, login.user_id)[-1]
        assert notice.body == f"{market.name}的“示范市场”称号已被撤销，不再公开显示。原因：发生食品安全事件"
