"""Issue 9 item 4: joining a rider station needs the station branch's confirmation or the join
code its secretary shares; until then a rider sees nothing of the station's people. A plain
rider sees others' standings under masked names."""
from tests.conftest import error_code


def _station(make_org):
    return make_org(name="万秀区美团骑手党支部", sector="rider", station="万秀区美团站", platform="美团")


def test_without_a_code_a_rider_asks_and_sees_nothing_until_confirmed(client, auth, db, make_org):
    station = _station(make_org)
    secretary = auth.login("station-sec", role="branch_secretary", scope=f"org:{station.id}")
    rider = auth.login("rider-1")
    asked = client.post(f"/api/v1/orgs/{station.id}/riders", headers=rider.headers)
    assert asked.status_code == 202 and asked.get_json()["status"] == "pending"
    again = client.post(f"/api/v1/orgs/{station.id}/riders", headers=rider.headers)
    assert again.status_code == 200 and again.get_json()["request_id"] == asked.get_json()["request_id"]
    # Not in the station yet: its leaderboard (names of its party members) is closed.
    board = client.get(f"/api/v1/orgs/{station.id}/leaderboard", headers=rider.headers)
    assert board.status_code == 404

    queue = client.get(f"/api/v1/orgs/{station.id}/rider-requests?status=pending", headers=secretary.headers)
    assert [item["user_id"] for item in queue.get_json()["items"]] == [rider.user_id]
    decided = client.post(f"/api/v1/rider-requests/{asked.get_json()['request_id']}/review",
                          json={"decision": "approve"}, headers=secretary.headers)
    assert decided.status_code == 200 and decided.get_json()["status"] == "approved"
    assert client.get(f"/api/v1/orgs/{station.id}/leaderboard", headers=rider.headers).status_code == 200
    twice = client.post(f"/api/v1/rider-requests/{asked.get_json()['request_id']}/review",
                        json={"decision": "reject", "reason": "非本站骑手"}, headers=secretary.headers)
    assert twice.status_code == 409 and error_code(twice) == "STATION_JOIN_DECIDED"


def test_a_refused_rider_may_ask_again(client, auth, make_org):
    station = _station(make_org)
    secretary = auth.login("station-sec", role="branch_secretary", scope=f"org:{station.id}")
    rider = auth.login("rider-2")
    request_id = client.post(f"/api/v1/orgs/{station.id}/riders", headers=rider.headers).get_json()["request_id"]
    no_reason = client.post(f"/api/v1/rider-requests/{request_id}/review", json={"decision": "reject"},
                            headers=secretary.headers)
    assert error_code(no_reason) == "REASON_REQUIRED"
    client.post(f"/api/v1/rider-requests/{request_id}/review", json={"decision": "reject", "reason": "非本站骑手"},
                headers=secretary.headers)
    again = client.post(f"/api/v1/orgs/{station.id}/riders", headers=rider.headers)
    assert again.status_code == 202 and again.get_json()["request_id"] == request_id


def test_join_codes_are_checked_rotated_disabled_and_bounded_in_tries(client, auth, make_org):
    station = _station(make_org)
    secretary = auth.login("station-sec", role="branch_secretary", scope=f"org:{station.id}")
    assert client.get(f"/api/v1/orgs/{station.id}/join-code", headers=secretary.headers).get_json()["join_code"] is None
    old = client.post(f"/api/v1/orgs/{station.id}/join-code", headers=secretary.headers).get_json()["join_code"]
    new = client.post(f"/api/v1/orgs/{station.id}/join-code", headers=secretary.headers).get_json()["join_code"]
    assert old != new and len(new) == 8
    rider = auth.login("rider-3")
    stale = client.post(f"/api/v1/orgs/{station.id}/riders", json={"join_code": old}, headers=rider.headers)
    assert stale.status_code == 422 and error_code(stale) == "JOIN_CODE_INVALID"
    client.delete(f"/api/v1/orgs/{station.id}/join-code", headers=secretary.headers)
    off = client.post(f"/api/v1/orgs/{station.id}/riders", json={"join_code": new}, headers=rider.headers)
    assert error_code(off) == "JOIN_CODE_INVALID"
    guesser = auth.login("rider-4")
    codes = [client.post(f"/api/v1/orgs/{station.id}/riders", json={"join_code": f"GUESS{i:03d}"},
                         headers=guesser.headers) for i in range(11)]
    assert [r.status_code for r in codes] == [422] * 10 + [429]
    assert error_code(codes[-1]) == "JOIN_CODE_RATE_LIMITED" and int(codes[-1].headers["Retry-After"]) > 0


def test_only_the_station_branch_decides(client, auth, make_org):
    station = _station(make_org)
    elsewhere = make_org(name="其他支部")
    other_secretary = auth.login("other-sec", role="branch_secretary", scope=f"org:{elsewhere.id}")
    rider = auth.login("rider-5")
    request_id = client.post(f"/api/v1/orgs/{station.id}/riders", headers=rider.headers).get_json()["request_id"]
    # Another branch's secretary is outside the station's scope: its objects are not disclosed.
    for response, code in (
        (client.post(f"/api/v1/rider-requests/{request_id}/review", json={"decision": "approve"},
                     headers=other_secretary.headers), "STATION_JOIN_NOT_FOUND"),
        (client.get(f"/api/v1/orgs/{station.id}/rider-requests", headers=other_secretary.headers), "ORG_NOT_FOUND"),
        (client.post(f"/api/v1/orgs/{station.id}/join-code", headers=other_secretary.headers), "ORG_NOT_FOUND"),
    ):
        assert response.status_code == 404 and error_code(response) == code, response.get_json()
    # A rider holds no reviewing role at all: the route refuses before looking anything up.
    own = client.post(f"/api/v1/rider-requests/{request_id}/review", json={"decision": "approve"},
                      headers=rider.headers)
    assert own.status_code == 403 and error_code(own) == "FORBIDDEN"


def test_profile_names_and_the_choice_to_show_them(client, auth):
    user = auth.login("named")
    updated = client.put("/api/v1/me", json={"real_name": "王建军", "show_name": True}, headers=user.headers)
    assert updated.status_code == 200
    assert (updated.get_json()["real_name"], updated.get_json()["show_name"]) == ("王建军", True)
    short = client.put("/api/v1/me", json={"real_name": "王"}, headers=user.headers)
    assert short.status_code == 422
    risky = client.put("/api/v1/me", json={"real_name": "违禁词"}, headers=user.headers)
    assert error_code(risky) == "CONTENT_RISKY"


def test_names_are_masked_by_rule():
    from app.identity.services import mask_name

    assert [mask_name(n) for n in ("王建军", "王军", "欧阳建锋", "", None)] == ["王*军", "王*", "欧**锋", "匿名", "匿名"]
