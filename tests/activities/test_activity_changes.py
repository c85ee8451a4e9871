"""Issue 11 items 3 and 4: an organiser changes an activity's time or place; registrants are
told (and told of a cancellation); the change is audited; a past or cancelled activity stays."""
from app.core.audit import AuditEntry
from app.reminders.models import Notification
from tests.conftest import at, error_code


def test_a_change_of_time_or_place_reaches_the_registrants(client, auth, db, make_org, make_activity, member, clock):
    clock.set(at("2026-03-01 08:00"))
    org = make_org()
    activity = make_activity(org, starts="2026-03-02 09:00")
    member("m-1", org)
    member("m-2", org)
    registered = auth.login("m-1")
    assert client.post(f"/api/v1/activities/{activity.id}/registrations", headers=registered.headers).status_code == 201
    sec = auth.login("sec", role="branch_secretary", scope=f"org:{org.id}")
    url = f"/api/v1/activities/{activity.id}"
    assert error_code(client.patch(url, json={}, headers=sec.headers)) == "BODY_REQUIRED"
    assert error_code(client.patch(url, json={"ends_at": "2026-03-02T08:00:00"}, headers=sec.headers)) == \
        "ACTIVITY_TIME_INVALID"
    assert error_code(client.patch(url, json={"title": "x"}, headers=registered.headers)) == "FORBIDDEN"
    moved = client.patch(url, json={"starts_at": "2026-03-02T14:00:00", "ends_at": "2026-03-02T16:00:00",
                                    "checkin_opens_at": "2026-03-02T13:30:00", "checkin_closes_at": "2026-03-02T16:00:00",
                                    "place_name": "东中市场二楼会议室"}, headers=sec.headers)
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["starts_at"].startswith("2026-03-02T14:00") and moved.get_json()["place_name"] == "东中市场二楼会议室"
    [notice] = db.session.query(Notification).filter_by(kind="activity_changed").all()
    assert notice.user_id == registered.user_id and "14:00" in notice.body and "二楼会议室" in notice.body
    entry = db.session.query(AuditEntry).filter_by(action="activity.update").one()
    assert entry.after["place_name"] == "东中市场二楼会议室" and "starts_at" in entry.before
    # A title-only change tells nobody; a cancellation tells the registrants why.
    assert client.patch(url, json={"title": "三月主题党日"}, headers=sec.headers).status_code == 200
    assert client.post(f"{url}/cancel", json={"reason": "台风预警"}, headers=sec.headers).status_code == 200
    notices = db.session.query(Notification).filter_by(kind="activity_changed").order_by(Notification.id).all()
    assert len(notices) == 2 and "台风预警" in notices[1].body and notices[1].title == "活动取消通知"
    assert error_code(client.patch(url, json={"title": "再改"}, headers=sec.headers)) == "ACTIVITY_CANCELLED"


def test_an_activity_that_has_ended_is_not_edited(client, auth, make_org, make_activity, clock):
    clock.set(at("2026-03-05 08:00"))
    org = make_org()
    activity = make_activity(org, starts="2026-03-02 09:00")
    sec = auth.login("sec", role="branch_secretary", scope=f"org:{org.id}")
    assert error_code(client.patch(f"/api/v1/activities/{activity.id}", json={"title": "补记"},
                                   headers=sec.headers)) == "ACTIVITY_ENDED"
