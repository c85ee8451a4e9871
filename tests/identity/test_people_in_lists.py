"""Issue 11 item 1: wherever a reviewer or organiser reads a person (membership claims, rider
requests, stall claims, credentials, pledges, leave), they see a name and a masked phone, never a
bare id; the name is what the person set with PUT /me."""
from tests.conftest import at
from tests.orgs.factories import create_org


def _named(client, login, name, phone_digits="13800138000"):
    assert client.put("/api/v1/me", json={"real_name": name}, headers=login.headers).status_code == 200
    assert client.post("/api/v1/auth/phone", json={"code": f"sim-phone-{phone_digits}"},
                       headers=login.headers).status_code == 200
    return {"id": login.user_id, "name": name, "phone": "138****8000"}


def test_membership_and_rider_requests_name_the_applicant(client, auth, regions):
    org = create_org()
    station = create_org(name="万秀区美团站骑手党支部", sector="rider", station="万秀区美团站")
    member = auth.login("m-1")
    card = _named(client, member, "王建军")
    assert client.post(f"/api/v1/orgs/{org.id}/memberships", json={"standing": "formal"},
                       headers=member.headers).status_code == 201
    assert client.post(f"/api/v1/orgs/{station.id}/riders", json={}, headers=member.headers).status_code == 202
    sec = auth.login("sec", role="branch_secretary", scope=f"org:{org.id}")
    listed = client.get(f"/api/v1/orgs/{org.id}/memberships", headers=sec.headers).get_json()["items"]
    assert listed[0]["person"] == card
    station_sec = auth.login("sec-s", role="branch_secretary", scope=f"org:{station.id}")
    requests = client.get(f"/api/v1/orgs/{station.id}/rider-requests", headers=station_sec.headers).get_json()
    assert requests["items"][0]["person"] == card


def test_market_queues_name_who_claimed_uploaded_and_signed(shop, client, clock, db):
    clock.set(at("2026-03-01 09:00"))
    market = shop.market()
    manager = shop.manager(market)
    token = shop.stalls(market, manager, ["A-01"])[0]["token"]
    login, merchant_id = shop.merchant()
    card = _named(client, login, "李明")
    shop.claim(login, merchant_id, token)
    stalls = client.get(f"/api/v1/markets/{market.id}/stalls", headers=manager.headers).get_json()["items"]
    assert stalls[0]["pending_claim"]["requested_by"] == card
    shop.review_claim(manager, token)
    credential_id = shop.credential(login, merchant_id, long_term=True)
    listed = client.get(f"/api/v1/merchants/{merchant_id}/credentials", headers=manager.headers).get_json()
    assert [c["submitted_by"] for c in listed if c["id"] == credential_id] == [card]
    shop.approved_pledge(login, merchant_id, manager)
    pledges = client.get(f"/api/v1/markets/{market.id}/pledges", headers=manager.headers).get_json()["items"]
    assert pledges[0]["signed_by"] == card


def test_a_person_without_a_name_or_phone_still_reads_as_someone(client, auth, regions):
    org = create_org()
    member = auth.login("anon")
    client.post(f"/api/v1/orgs/{org.id}/memberships", json={"standing": "formal"}, headers=member.headers)
    sec = auth.login("sec", role="branch_secretary", scope=f"org:{org.id}")
    person = client.get(f"/api/v1/orgs/{org.id}/memberships", headers=sec.headers).get_json()["items"][0]["person"]
    assert person["id"] == member.user_id and person["name"] and person["phone"] is None
