"""GET /me/notifications, read, read-all; POST /me/subscriptions."""
from datetime import timedelta

from app.reminders.models import SubscriptionConsent
from tests.conftest import at, error_code


def _seed(remind, clock, user, n):
    for i in range(n):
        remind(user, subject=f"credential:{i}", title=f"提醒{i}")
        clock.advance(timedelta(minutes=1))


def test_inbox_is_paginated_newest_first_with_unread_count(client, auth, clock, remind, db):
    clock.set(at("2026-03-01 09:00"))
    me = auth.login("inbox-me")
    from app.identity.models import User

    user = db.session.get(User, me.user_id)
    _seed(remind, clock, user, 5)

    page1 = client.get("/api/v1/me/notifications?per_page=2", headers=me.headers).get_json()
    assert (page1["total"], page1["page"], page1["per_page"], page1["unread"]) == (5, 1, 2, 5)
    assert [item["title"] for item in page1["items"]] == ["提醒4", "提醒3"]
    item = page1["items"][0]
    assert set(item) == {"id", "kind", "title", "body", "page", "read", "read_at", "created_at"}
    assert item["read"] is False and item["created_at"].endswith("+08:00")
    page3 = client.get("/api/v1/me/notifications?per_page=2&page=3", headers=me.headers).get_json()
    assert [item["title"] for item in page3["items"]] == ["提醒0"]

    read = client.post(f"/api/v1/me/notifications/{item['id']}/read", headers=me.headers)
    assert read.status_code == 200
    assert read.get_json()["read"] is True
    again = client.post(f"/api/v1/me/notifications/{item['id']}/read", headers=me.headers)
    assert again.get_json()["read_at"] == read.get_json()["read_at"]
    assert client.get("/api/v1/me/notifications", headers=me.headers).get_json()["unread"] == 4

    all_read = client.post("/api/v1/me/notifications/read-all", headers=me.headers)
    assert all_read.status_code == 200
    assert all_read.get_json() == {"updated": 4, "unread": 0}
    assert client.get("/api/v1/me/notifications", headers=me.headers).get_json()["unread"] == 0


def test_another_users_notification_is_404(client, auth, clock, remind, db):
    from app.identity.models import User

    clock.set(at("2026-03-01 09:00"))
    owner = auth.login("owner")
    other = auth.login("other")
    remind(db.session.get(User, owner.user_id))
    nid = client.get("/api/v1/me/notifications", headers=owner.headers).get_json()["items"][0]["id"]

    response = client.post(f"/api/v1/me/notifications/{nid}/read", headers=other.headers)
    assert response.status_code == 404
    assert error_code(response) == "NOTIFICATION_NOT_FOUND"
    assert client.get("/api/v1/me/notifications", headers=other.headers).get_json()["total"] == 0
    client.post("/api/v1/me/notifications/read-all", headers=other.headers)
    assert client.get("/api/v1/me/notifications", headers=owner.headers).get_json()["unread"] == 1
    assert client.post("/api/v1/me/notifications/999999/read", headers=owner.headers).status_code == 404


def test_bad_page_args_are_422(client, auth):
    me = auth.login("pager")
    for query in ("page=0", "per_page=101", "page=x"):
        response = client.get(f"/api/v1/me/notifications?{query}", headers=me.headers)
        assert response.status_code == 422, query
        assert error_code(response) == "VALIDATION_ERROR"


def test_subscriptions_add_one_consent_per_accepted_key(client, auth, db):
    me = auth.login("subscriber")
    response = client.post("/api/v1/me/subscriptions", headers=me.headers,
                           json={"template_keys": ["credential_expiry", "activity_start", "credential_expiry"]})
    assert response.status_code == 200
    ledger = {c["template_key"]: c["remaining"] for c in response.get_json()["consents"]}
    assert ledger == {"credential_expiry": 1, "pledge_renewal": 0, "activity_start": 1,
                      "branch_duty": 0, "review_digest": 0, "review_result": 0}
    client.post("/api/v1/me/subscriptions", headers=me.headers, json={"template_keys": ["credential_expiry"]})
    ledger = {c["template_key"]: c["remaining"]
              for c in client.get("/api/v1/me/subscriptions", headers=me.headers).get_json()["consents"]}
    assert ledger["credential_expiry"] == 2


def test_subscriptions_with_an_idempotency_key_count_once(client, auth, db):
    me = auth.login("retrier")
    headers = {**me.headers, "Idempotency-Key": "sub-1"}
    for _ in range(3):
        assert client.post("/api/v1/me/subscriptions", headers=headers,
                           json={"template_keys": ["branch_duty"]}).status_code == 200
    assert db.session.query(SubscriptionConsent).filter_by(user_id=me.user_id).one().remaining == 1


def test_unknown_template_key_is_422_and_adds_nothing(client, auth, db):
    me = auth.login("typo")
    response = client.post("/api/v1/me/subscriptions", headers=me.headers,
                           json={"template_keys": ["credential_expiry", "lottery"]})
    # The document lists the keys (an enum), so an unknown one is a field error, by position.
    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert "1" in response.get_json()["error"]["details"]["fields"]["template_keys"]
    assert db.session.query(SubscriptionConsent).count() == 0
    for body in ({}, {"template_keys": "credential_expiry"}, {"template_keys": [1]}):
        response = client.post("/api/v1/me/subscriptions", headers=me.headers, json=body)
        assert response.status_code == 422
        assert error_code(response) == "VALIDATION_ERROR"
