"""Points: an append-only ledger; automatic awards once per check-in; manual adjustments by
secretaries (audited); the leaderboard by Asia/Shanghai month."""
import pytest

from app.activities.checkin import make_payload, slot_of
from app.activities.models import PointsEntry
from app.core.audit import AuditEntry
from tests.conftest import at, error_code


@pytest.fixture
def org(make_org):
    return make_org()


def check_in(client, auth, activity, openid, clock):
    return client.post(f"/api/v1/activities/{activity.id}/checkins", headers=auth.login(openid).headers,
                       json={"payload": make_payload(activity.id, slot_of(clock.now()))})


def test_checkin_awards_points_once_and_me_points_shows_them(client, auth, db, org, make_activity, member, clock):
    activity = make_activity(org, points=5)
    member("m", org)
    clock.set(at("2026-03-01 09:00"))
    # Read once before: the answer kept for repeat reads must not outlive the check-in's award.
    assert client.get("/api/v1/me/points", headers=auth.login("m").headers).get_json()["balance"] == 0
    check_in(client, auth, activity, "m", clock)
    check_in(client, auth, activity, "m", clock)
    mine = client.get("/api/v1/me/points", headers=auth.login("m").headers).get_json()
    assert mine["balance"] == 5 and mine["total"] == 1
    assert mine["items"][0]["reason"] == "checkin" and mine["items"][0]["activity_id"] == activity.id


def test_secretary_adjusts_points_with_reason_audited(client, auth, db, org, member):
    target = member("m", org)
    sec = auth.login("sec", role="branch_secretary", scope=f"org:{org.id}")
    response = client.post(f"/api/v1/orgs/{org.id}/points", json={"user_id": target.id, "delta": 10, "reason": "志愿服务表现突出"},
                           headers=sec.headers)
    assert response.status_code == 201, response.get_json()
    entry = db.session.query(AuditEntry).filter_by(action="points.adjust").one()
    assert entry.actor_id == sec.user_id and entry.actor_role == "branch_secretary" and entry.reason == "志愿服务表现突出"
    assert entry.target_id == str(target.id) and entry.request_id
    assert error_code(client.post(f"/api/v1/orgs/{org.id}/points", json={"user_id": target.id, "delta": 0, "reason": "x"},
                                  headers=sec.headers)) == "POINTS_DELTA_INVALID"
    stranger = auth.login("stranger")
    assert error_code(client.post(f"/api/v1/orgs/{org.id}/points", json={"user_id": stranger.user_id, "delta": 1,
                                                                       "reason": "x"}, headers=sec.headers)) == "POINTS_NOT_MEMBER"


def test_rider_and_other_secretary_cannot_adjust_points(client, auth, org, make_org, member):
    target = member("m", org)
    body = {"user_id": target.id, "delta": 100, "reason": "自己加分"}
    rider = auth.login("rider", role="rider")
    assert error_code(client.post(f"/api/v1/orgs/{org.id}/points", json=body, headers=rider.headers)) == "FORBIDDEN"
    other = make_org(name="B 支部")
    sec_b = auth.login("sec-b", role="branch_secretary", scope=f"org:{other.id}")
    assert error_code(client.post(f"/api/v1/orgs/{org.id}/points", json=body, headers=sec_b.headers)) == "ORG_NOT_FOUND"


def test_ledger_refuses_update_and_delete(db, org, member):
    user = member("m", org)
    entry = PointsEntry(user_id=user.id, org_id=org.id, reason="manual", delta=3, note="x")
    db.session.add(entry)
    db.session.commit()
    entry.delta = 300
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.flush()
    db.session.rollback()
    db.session.delete(entry)
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.flush()
    db.session.rollback()


def test_leaderboard_by_shanghai_month_and_all_time(client, auth, db, org, member, make_org, clock):
    alice, bob = member("alice", org), member("bob", org)
    alice.real_name, bob.real_name = "王甲", "李建乙"
    carol = member("carol", org)
    carol.real_name, carol.show_name = "张丙", True
    db.session.add_all([
        # 2026-02-28 23:30 in Shanghai is February, though UTC says 15:30 the same day
        PointsEntry(user_id=alice.id, org_id=org.id, reason="manual", delta=50, created_at=at("2026-02-28 23:30")),
        # 2026-03-01 00:30 Shanghai is 2026-02-28 16:30 UTC, but March locally
        PointsEntry(user_id=bob.id, org_id=org.id, reason="manual", delta=20, created_at=at("2026-03-01 00:30")),
        PointsEntry(user_id=alice.id, org_id=org.id, reason="manual", delta=5, created_at=at("2026-03-05 10:00")),
    ])
    db.session.commit()
    clock.set(at("2026-03-20 12:00"))
    viewer = auth.login("alice")
    month = client.get(f"/api/v1/orgs/{org.id}/leaderboard?period=month", headers=viewer.headers).get_json()
    # A plain member sees standings: others' names masked unless they chose to show them
    # (张丙 did), their own in full, and nobody's user id but their own.
    assert [(i["rank"], i["name"], i["points"]) for i in month["items"]] == [
        (1, "李*乙", 20), (2, "王甲", 5), (3, "张丙", 0)]
    assert [i["user_id"] for i in month["items"]] == [None, alice.id, None]
    assert month["me"] == {"rank": 2, "name": "王甲", "points": 5, "is_me": True, "user_id": alice.id}
    assert month["from"] == "2026-03-01T00:00:00+08:00"
    everything = client.get(f"/api/v1/orgs/{org.id}/leaderboard?period=all", headers=viewer.headers).get_json()
    assert [(i["name"], i["points"]) for i in everything["items"]] == [("王甲", 55), ("李*乙", 20), ("张丙", 0)]
    # The organisation's secretary sees who is who.
    secretary = auth.login("sec", role="branch_secretary", scope=f"org:{org.id}")
    full = client.get(f"/api/v1/orgs/{org.id}/leaderboard?period=all", headers=secretary.headers).get_json()
    assert [(i["name"], i["user_id"]) for i in full["items"]] == [("王甲", alice.id), ("李建乙", bob.id),
                                                                  ("张丙", carol.id)]
    outsider = auth.login("outsider", role="rider")
    assert error_code(client.get(f"/api/v1/orgs/{org.id}/leaderboard", headers=outsider.headers)) == "ORG_NOT_FOUND"
