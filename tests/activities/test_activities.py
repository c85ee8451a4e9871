"""Scheduling, listing, registration, leave, cancellation and attendance of activities."""
import io
from datetime import datetime

import pytest

from app.activities.checkin import make_payload, slot_of
from app.activities.models import Activity
from app.core.audit import AuditEntry
from tests.conftest import at, error_code, xlsx_table

BODY = {"type": "主题党日", "title": "三月主题党日：学习诚信经营", "description": "学习《小个专党建工作指引》",
        "starts_at": "2026-03-10T09:00:00", "ends_at": "2026-03-10T11:00:00", "points": 5}


@pytest.fixture
def org(make_org):
    return make_org()


@pytest.fixture
def secretary(auth, org):
    return auth.login("sec", role="branch_secretary", scope=f"org:{org.id}")


def test_secretary_schedules_with_default_checkin_window(client, secretary, org):
    response = client.post(f"/api/v1/orgs/{org.id}/activities", json=BODY, headers=secretary.headers)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["starts_at"] == "2026-03-10T09:00:00+08:00"
    assert body["checkin_opens_at"] == "2026-03-10T08:30:00+08:00"
    assert body["checkin_closes_at"] == "2026-03-10T11:00:00+08:00"
    assert body["status"] == "scheduled" and body["audience"] == "members"


def test_risky_description_is_refused_before_storing(client, db, secretary, org, wechat_sim):
    response = client.post(f"/api/v1/orgs/{org.id}/activities", json={**BODY, "description": "内含违禁词"},
                           headers=secretary.headers)
    assert error_code(response) == "CONTENT_RISKY"
    assert response.get_json()["error"]["details"] == {"field": "description"}
    assert db.session.query(Activity).count() == 0
    assert wechat_sim.sim_state.received("wxa/msg_sec_check")


def test_activity_input_checks(client, secretary, org):
    url = f"/api/v1/orgs/{org.id}/activities"
    assert error_code(client.post(url, json={**BODY, "ends_at": "2026-03-10T08:00:00"},
                                  headers=secretary.headers)) == "ACTIVITY_TIME_INVALID"
    assert error_code(client.post(url, json={**BODY, "lat": 23.4}, headers=secretary.headers)) == "ACTIVITY_PLACE_INCOMPLETE"
    assert error_code(client.post(url, json={**BODY, "audience": "station_riders"},
                                  headers=secretary.headers)) == "ACTIVITY_AUDIENCE_INVALID"
    assert error_code(client.post(url, json={**BODY, "type": "聚餐"}, headers=secretary.headers)) == "VALIDATION_ERROR"
    assert error_code(client.post(url, json={**BODY, "status": "cancelled"}, headers=secretary.headers)) == "VALIDATION_ERROR"


def test_manager_of_the_orgs_market_schedules_but_rider_and_other_secretary_cannot(client, auth, make_org, make_market):
    market = make_market()
    market_org = make_org(market_id=market.id)
    other = make_org(name="别的支部")
    manager = auth.login("mgr", role="market_manager", scope=f"market:{market.id}")
    assert client.post(f"/api/v1/orgs/{market_org.id}/activities", json=BODY, headers=manager.headers).status_code == 201
    assert error_code(client.post(f"/api/v1/orgs/{other.id}/activities", json=BODY,
                                  headers=manager.headers)) == "ORG_NOT_FOUND"
    rider = auth.login("rider", role="rider")
    assert error_code(client.post(f"/api/v1/orgs/{other.id}/activities", json=BODY,
                                  headers=rider.headers)) == "FORBIDDEN"
    other_sec = auth.login("sec-other", role="branch_secretary", scope=f"org:{other.id}")
    assert error_code(client.post(f"/api/v1/orgs/{market_org.id}/activities", json=BODY,
                                  headers=other_sec.headers)) == "ORG_NOT_FOUND"


def test_members_see_their_orgs_activities_riders_their_stations_open_ones(client, auth, make_org, make_activity,
                                                                           member, station_rider):
    mine = make_org(name="我的支部")
    theirs = make_org(name="别人的支部")
    station = make_org(name="骑手支部", sector="rider", station="美团站")
    a1 = make_activity(mine, starts="2026-03-10 09:00")
    a2 = make_activity(mine, starts="2026-04-10 09:00")
    make_activity(theirs, starts="2026-03-10 09:00")
    open_one = make_activity(station, starts="2026-03-12 09:00", audience="station_riders")
    make_activity(station, starts="2026-03-12 09:00", title="支委会", type="支委会")
    member("m", mine)
    station_rider("r", station)
    m, r = auth.login("m"), auth.login("r")
    listed = client.get("/api/v1/activities", headers=m.headers).get_json()
    assert [a["id"] for a in listed["items"]] == [a1.id, a2.id] and listed["total"] == 2
    march = client.get("/api/v1/activities?from=2026-03-01&to=2026-03-31", headers=m.headers).get_json()
    assert [a["id"] for a in march["items"]] == [a1.id]
    assert [a["id"] for a in client.get("/api/v1/activities", headers=r.headers).get_json()["items"]] == [open_one.id]
    assert client.get(f"/api/v1/activities?org={theirs.id}", headers=m.headers).get_json()["total"] == 0
    page = client.get("/api/v1/activities?per_page=1&page=2", headers=m.headers).get_json()
    assert [a["id"] for a in page["items"]] == [a2.id]
    assert error_code(client.get(f"/api/v1/activities/{a1.id}", headers=r.headers)) == "ACTIVITY_NOT_FOUND"
    reg = auth.login("reg", role="regulator", scope="region:450400")
    assert client.get("/api/v1/activities", headers=reg.headers).get_json()["total"] == 5


def test_register_leave_and_review(client, auth, db, org, secretary, make_activity, member, clock):
    activity = make_activity(org, starts="2026-03-10 09:00")
    member("m1", org)
    m1 = auth.login("m1")
    clock.set(at("2026-03-05 10:00"))
    first = client.post(f"/api/v1/activities/{activity.id}/registrations", headers=m1.headers)
    again = client.post(f"/api/v1/activities/{activity.id}/registrations", headers=m1.headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json()["id"] == again.get_json()["id"]
    stranger = auth.login("stranger")
    assert error_code(client.post(f"/api/v1/activities/{activity.id}/registrations",
                                  headers=stranger.headers)) == "ACTIVITY_NOT_FOUND"

    leave = client.post(f"/api/v1/activities/{activity.id}/leave", json={"reason": "外出进货"}, headers=m1.headers)
    assert leave.status_code == 201 and leave.get_json()["status"] == "pending"
    assert error_code(client.post(f"/api/v1/activities/{activity.id}/leave", json={"reason": "x"},
                                  headers=m1.headers)) == "LEAVE_EXISTS"
    assert error_code(client.post(f"/api/v1/leave-requests/{leave.get_json()['id']}/review",
                                  json={"decision": "approve"}, headers=m1.headers)) == "FORBIDDEN"
    approved = client.post(f"/api/v1/leave-requests/{leave.get_json()['id']}/review", json={"decision": "approve"},
                           headers=secretary.headers)
    assert approved.get_json()["status"] == "approved"
    assert db.session.query(AuditEntry).filter_by(action="leave.approve").one().actor_role == "branch_secretary"


def test_cancel_is_audited_and_stops_registration(client, auth, db, org, secretary, make_activity, member, clock):
    activity = make_activity(org, starts="2026-03-10 09:00")
    member("m1", org)
    clock.set(at("2026-03-05 10:00"))
    response = client.post(f"/api/v1/activities/{activity.id}/cancel", json={"reason": "台风预警"},
                           headers=secretary.headers)
    assert response.get_json()["status"] == "cancelled"
    entry = db.session.query(AuditEntry).filter_by(action="activity.cancel").one()
    assert entry.reason == "台风预警" and entry.actor_id == secretary.user_id
    assert error_code(client.post(f"/api/v1/activities/{activity.id}/registrations",
                                  headers=auth.login("m1").headers)) == "ACTIVITY_CANCELLED"
    assert error_code(client.post(f"/api/v1/activities/{activity.id}/cancel", json={"reason": "x"},
                                  headers=secretary.headers)) == "ACTIVITY_ALREADY_CANCELLED"


@pytest.fixture
def attended(client, auth, db, org, make_activity, member, clock):
    """Four members: one on time, one late, one on approved leave, one absent."""
    from app.activities.models import LeaveRequest
    from app.extensions import db as _db

    activity = make_activity(org, starts="2026-03-10 09:00")
    on_time = member("ontime", org)
    on_time.real_name, on_time.phone = "张三", "13800138000"
    late = member("late", org)
    late.real_name = "李四"
    leave = member("leave", org)
    leave.real_name = "王五"
    absent = member("absent", org)
    absent.real_name = "赵六"
    _db.session.add(LeaveRequest(activity_id=activity.id, user_id=leave.id, reason="住院", status="approved"))
    _db.session.commit()
    clock.set(at("2026-03-10 08:50"))
    client.post(f"/api/v1/activities/{activity.id}/checkins", headers=auth.login("ontime").headers,
                json={"payload": make_payload(activity.id, slot_of(clock.now()))})
    clock.set(at("2026-03-10 09:25"))
    client.post(f"/api/v1/activities/{activity.id}/checkins", headers=auth.login("late").headers,
                json={"payload": make_payload(activity.id, slot_of(clock.now()))})
    return activity


def test_attendance_counts_and_rows(client, secretary, attended):
    sheet = client.get(f"/api/v1/activities/{attended.id}/attendance", headers=secretary.headers).get_json()
    counts = sheet["counts"]
    assert (counts["present"], counts["late"], counts["on_leave"], counts["absent"], counts["expected"]) == (1, 1, 1, 1, 4)
    assert [(r["name"], r["state"]) for r in sheet["rows"]] == [
        ("张三", "present"), ("李四", "late"), ("王五", "on_leave"), ("赵六", "absent")]
    assert sheet["rows"][0]["phone"] == "138****8000"
    assert "13800138000" not in str(sheet)


def test_attendance_xlsx_lists_the_right_people_in_the_right_columns(client, secretary, attended):
    from openpyxl import load_workbook

    response = client.get(f"/api/v1/activities/{attended.id}/attendance?format=xlsx", headers=secretary.headers)
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    heading, header, rows, ws = xlsx_table(response.data)
    # A 三会一课 record: what, of which type, who organised it, when and where.
    assert heading[0] == f"{attended.title}（签到表）"
    assert attended.type in heading[1] and "组织：" in heading[1]
    assert heading[2].startswith("时间：2026-03-10 09:00") and "地点：" in heading[2]
    assert header == ("序号", "姓名", "手机号", "状态", "签到时间", "签到方式", "位置存疑", "请假事由")
    people = [(r[1], r[2], r[3], r[4], r[5], r[7]) for r in rows]
    assert people == [
        ("张三", "138****8000", "按时签到", datetime(2026, 3, 10, 8, 50), "扫码签到", None),
        ("李四", None, "迟到", datetime(2026, 3, 10, 9, 25), "扫码签到", None),
        ("王五", None, "请假", None, None, "住院"),
        ("赵六", None, "缺席", None, None, None),
    ]
    assert ws.auto_filter.ref and ws.freeze_panes
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]
    assert b"13800138000" not in response.data


def test_rider_cannot_see_another_orgs_attendance(client, auth, attended, make_org):
    rider = auth.login("rider", role="rider")
    assert error_code(client.get(f"/api/v1/activities/{attended.id}/attendance", headers=rider.headers)) == "FORBIDDEN"
    elsewhere = make_org(name="其他支部")
    other_sec = auth.login("sec-b", role="branch_secretary", scope=f"org:{elsewhere.id}")
    response = client.get(f"/api/v1/activities/{attended.id}/attendance?format=xlsx", headers=other_sec.headers)
    assert error_code(response) == "ACTIVITY_NOT_FOUND"
    assert client.get(f"/api/v1/activities/{attended.id}/attendance").status_code == 401
