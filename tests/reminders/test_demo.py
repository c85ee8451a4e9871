from sqlalchemy import func, select

from app.reminders.models import Notification, SubscriptionConsent


def test_demo_seed_gives_consents_and_inbox_entries_once(app, db, client, regions):
    from app.demo import seed_demo

    seed_demo()
    counts = (db.session.scalar(select(func.count()).select_from(Notification)),
              db.session.scalar(select(func.sum(SubscriptionConsent.remaining))))
    seed_demo()
    assert (db.session.scalar(select(func.count()).select_from(Notification)),
            db.session.scalar(select(func.sum(SubscriptionConsent.remaining)))) == counts
    assert counts[0] > 0 and counts[1] > 0

    response = client.post("/api/v1/auth/login", json={"code": "sim-demo-merchant"})
    headers = {"Authorization": f"Bearer {response.get_json()['token']}"}
    inbox = client.get("/api/v1/me/notifications", headers=headers).get_json()
    assert "欢迎使用小个专党建小程序" in [item["title"] for item in inbox["items"]]
    ledger = {c["template_key"]: c["remaining"]
              for c in client.get("/api/v1/me/subscriptions", headers=headers).get_json()["consents"]}
    assert ledger["credential_expiry"] == 2
