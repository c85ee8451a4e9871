"""Issue 11 item 2: the lists and queues a working day needs, paged, filtered, in scope, oldest
pending first, naming people and entities."""
from app.activities.models import CheckInRefusal
from app.core.time import utcnow
from tests.conftest import at, error_code
from tests.markets.factories import USCC_B
from tests.orgs.factories import add_member, create_activity, create_org


def test_markets_in_scope_with_counts(shop, client, auth, clock):
    clock.set(at("2026-03-01 09:00"))
    east = shop.market(name="东中农贸市场")
    shop.market(name="长洲综合市场", region_code="450405")
    manager = shop.manager(east)
    tokens = [s["token"] for s in shop.stalls(east, manager, ["A-01", "A-02", "A-03"])]
    login, merchant_id = shop.merchant()
    shop.claim(login, merchant_id, tokens[0])
    shop.review_claim(manager, tokens[0])
    shop.credential(login, merchant_id, long_term=True)
    other, other_id = shop.merchant("merchant-b", uscc=USCC_B, name="万秀区张记水果店")
    shop.claim(other, other_id, tokens[1])
    city = auth.login("reg-city", role="regulator", scope="region:450400")
    listed = client.get("/api/v1/markets", headers=city.headers).get_json()
    assert [m["name"] for m in listed["items"]] == ["东中农贸市场", "长洲综合市场"] and listed["total"] == 2
    assert listed["items"][0]["counts"] == {"stalls": 3, "claimed": 1, "pending_claims": 1,
                                            "pending_credentials": 1, "pending_pledges": 0}
    assert [m["name"] for m in client.get("/api/v1/markets?region=450405", headers=city.headers)
            .get_json()["items"]] == ["长洲综合市场"]
    assert client.get("/api/v1/markets?q=%E4%B8%9C%E4%B8%AD", headers=city.headers).get_json()["total"] == 1  # 东中
    assert client.get("/api/v1/markets?q=%25", headers=city.headers).get_json()["total"] == 0  # % is literal
    district = auth.login("reg-cz", role="regulator", scope="region:450405")
    assert [m["name"] for m in client.get("/api/v1/markets", headers=district.headers).get_json()["items"]] == [
        "长洲综合市场"]
    assert [m["name"] for m in client.get("/api/v1/markets", headers=manager.headers).get_json()["items"]] == [
        "东中农贸市场"]
    assert error_code(client.get("/api/v1/markets?region=999999", headers=city.headers)) == "REGION_NOT_FOUND"
    assert client.get("/api/v1/markets?region=abc", headers=city.headers).status_code == 422


def test_claim_and_credential_queues_put_the_oldest_first(shop, client, clock, auth):
    clock.set(at("2026-03-01 09:00"))
    market = shop.market()
    manager = shop.manager(market)
    tokens = [s["token"] for s in shop.stalls(market, manager, ["A-01", "A-02"])]
    first, first_id = shop.merchant()
    shop.claim(first, first_id, tokens[0])
    clock.set(at("2026-03-01 10:00"))
    second, second_id = shop.merchant("merchant-b", uscc=USCC_B, name="万秀区张记水果店")
    shop.claim(second, second_id, tokens[1])
    queue = client.get(f"/api/v1/markets/{market.id}/claims", headers=manager.headers).get_json()
    assert [c["stall"]["number"] for c in queue["items"]] == ["A-01", "A-02"]
    assert queue["items"][0]["merchant"]["name"] == "万秀区李记蔬菜店" and queue["items"][0]["requested_by"]["name"]
    shop.review_claim(manager, tokens[0])
    assert [c["stall"]["number"] for c in client.get(f"/api/v1/markets/{market.id}/claims", headers=manager.headers)
            .get_json()["items"]] == ["A-02"]
    confirmed = client.get(f"/api/v1/markets/{market.id}/claims?status=confirmed", headers=manager.headers).get_json()
    assert [c["stall"]["number"] for c in confirmed["items"]] == ["A-01"]
    # Credentials: the holder's and the claimant's, oldest first, with the stall numbers here.
    clock.set(at("2026-03-02 09:00"))
    shop.credential(second, second_id, kind="food_business", number="JY2", valid_until="2027-01-01")
    clock.set(at("2026-03-02 10:00"))
    shop.credential(first, first_id, long_term=True)
    creds = client.get(f"/api/v1/markets/{market.id}/credentials", headers=manager.headers).get_json()
    assert [(c["merchant"]["name"], c["kind"]) for c in creds["items"]] == [
        ("万秀区张记水果店", "food_business"), ("万秀区李记蔬菜店", "business_licence")]
    assert creds["items"][1]["merchant"]["stall_numbers"] == ["A-01"] and creds["items"][0]["photo_url"]
    outsider = shop.manager(shop.market(name="长洲区市场", region_code="450405"), "manager-2")
    assert error_code(client.get(f"/api/v1/markets/{market.id}/credentials", headers=outsider.headers)) == \
        "MARKET_NOT_FOUND"
    assert client.get(f"/api/v1/markets/{market.id}/claims?status=bogus", headers=manager.headers).status_code == 422


def test_find_an_org_and_read_its_members(client, auth, db, regions):
    branch = create_org()
    create_org(name="万秀区美团站骑手党支部", sector="rider", station="万秀区美团外卖站")
    create_org(name="长洲区某市场党支部", region_code="450405")
    anyone = auth.login("rider")
    found = client.get("/api/v1/orgs?q=%E7%BE%8E%E5%9B%A2", headers=anyone.headers).get_json()  # 美团
    assert [o["name"] for o in found["items"]] == ["万秀区美团站骑手党支部"] and "join_code" not in found["items"][0]
    assert client.get("/api/v1/orgs?sector=rider&region=450403", headers=anyone.headers).get_json()["total"] == 1
    assert client.get("/api/v1/orgs?region=450405", headers=anyone.headers).get_json()["total"] == 1
    assert client.get("/api/v1/orgs?type=nonsense", headers=anyone.headers).status_code == 422
    add_member("m-1", branch)
    add_member("m-2", branch, status="pending")
    sec = auth.login("sec", role="branch_secretary", scope=f"org:{branch.id}")
    members = client.get(f"/api/v1/orgs/{branch.id}/members", headers=sec.headers).get_json()
    assert members["total"] == 1 and members["items"][0]["person"]["name"]
    assert error_code(client.get(f"/api/v1/orgs/{branch.id}/members", headers=anyone.headers)) == "FORBIDDEN"


def test_an_organiser_sees_refused_scans_and_why(client, auth, db, regions):
    org = create_org()
    activity = create_activity(org)
    rider = add_member("m-1", org)
    db.session.add(CheckInRefusal(activity_id=activity.id, user_id=rider.id, at=utcnow(), code="CHECKIN_OUTSIDE_AREA",
                                  count=3, distance_m=850.0, accuracy_m=30.0))
    db.session.commit()
    sec = auth.login("sec", role="branch_secretary", scope=f"org:{org.id}")
    refused = client.get(f"/api/v1/activities/{activity.id}/refused-scans", headers=sec.headers).get_json()
    [row] = refused["items"]
    assert row["count"] == 3 and row["reason"].startswith("您不在活动签到范围内") and row["person"]["id"] == rider.id
    member = auth.login("m-1")
    assert client.get(f"/api/v1/activities/{activity.id}/refused-scans", headers=member.headers).status_code == 403


def test_stall_list_filters(shop, client, clock):
    clock.set(at("2026-03-01 09:00"))
    market, manager, token, login, merchant_id = shop.trusted_stall(until="2026-03-20")
    numbers = lambda query: [s["number"] for s in client.get(  # noqa: E731
        f"/api/v1/markets/{market.id}/stalls?{query}", headers=manager.headers).get_json()["items"]]
    assert numbers("") == ["A-01", "A-02"]
    assert numbers("claimed=true") == ["A-01"] and numbers("claimed=false") == ["A-02"]
    assert numbers("verdict=partial") == ["A-01"]  # licence and permit, no pledge yet
    assert numbers("verdict=none") == ["A-02"] and numbers("verdict=good") == []
    assert numbers("expiring_within=30") == ["A-01"]  # the permit ends on 2026-03-20
    assert numbers("expiring_within=10") == []
    assert client.get(f"/api/v1/markets/{market.id}/stalls?verdict=best", headers=manager.headers).status_code == 422
    assert client.get(f"/api/v1/markets/{market.id}/stalls?expiring_within=-1",
                      headers=manager.headers).status_code == 422
