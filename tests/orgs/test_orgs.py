"""Party organisations: who may create them, membership claims and their review (audited),
riders joining a station, and the 共产党员经营户 read hook."""
from app.core.audit import AuditEntry
from app.orgs.models import Membership
from tests.conftest import error_code
from tests.orgs.factories import add_member


def test_regulator_creates_org_in_region_only(client, auth, regions):
    reg = auth.login("reg-wuzhou", role="regulator", scope="region:450400")
    body = {"name": "东中市场党支部", "kind": "branch", "sector": "market", "region_code": "450403"}
    ok = client.post("/api/v1/orgs", json=body, headers=reg.headers)
    assert ok.status_code == 201, ok.get_json()
    assert ok.get_json()["kind_label"] == "党支部"
    other = client.post("/api/v1/orgs", json={**body, "region_code": "430281"}, headers=reg.headers)
    assert other.status_code == 403 and error_code(other) == "OUT_OF_SCOPE"


def test_rider_cannot_create_orgs_and_anonymous_gets_401(client, auth, regions):
    rider = auth.login("rider-1", role="rider")
    body = {"name": "x", "kind": "branch", "sector": "rider", "region_code": "450403"}
    response = client.post("/api/v1/orgs", json=body, headers=rider.headers)
    assert response.status_code == 403 and error_code(response) == "FORBIDDEN"
    assert error_code(client.post("/api/v1/orgs", json=body)) == "UNAUTHORIZED"


def test_secretary_creates_children_of_own_org_only(client, auth, make_org):
    committee = make_org(name="万秀区小个专党委", kind="committee", region_code="450400")
    elsewhere = make_org(name="醴陵党委", kind="committee", region_code="430281")
    sec = auth.login("sec-committee", role="branch_secretary", scope=f"org:{committee.id}")
    body = {"name": "万秀区快递外卖骑手党支部", "kind": "branch", "sector": "rider", "region_code": "450403",
            "parent_id": committee.id, "station": "万秀区美团站", "platform": "美团"}
    ok = client.post("/api/v1/orgs", json=body, headers=sec.headers)
    assert ok.status_code == 201, ok.get_json()
    assert ok.get_json()["station"] == "万秀区美团站"
    # a grandchild: the committee secretary covers everything below
    grandchild = client.post("/api/v1/orgs", json={**body, "name": "第一党小组", "parent_id": ok.get_json()["id"]},
                             headers=sec.headers)
    assert grandchild.status_code == 201
    foreign = client.post("/api/v1/orgs", json={**body, "parent_id": elsewhere.id, "region_code": "430281"},
                          headers=sec.headers)
    assert foreign.status_code == 403 and error_code(foreign) == "OUT_OF_SCOPE"
    # without a parent a secretary has no region to act in
    root = client.post("/api/v1/orgs", json={**body, "parent_id": None}, headers=sec.headers)
    assert root.status_code == 403 and error_code(root) == "OUT_OF_SCOPE"
    mismatch = client.post("/api/v1/orgs", json={**body, "region_code": "450000"}, headers=sec.headers)
    assert error_code(mismatch) == "ORG_REGION_MISMATCH"


def test_org_refuses_unknown_kind_and_missing_parent(client, auth, regions):
    reg = auth.login("reg", role="regulator", scope="region:450400")
    body = {"name": "x", "kind": "cell", "sector": "market", "region_code": "450403"}
    assert error_code(client.post("/api/v1/orgs", json=body, headers=reg.headers)) == "VALIDATION_ERROR"
    body.update(kind="branch", parent_id=999)
    assert error_code(client.post("/api/v1/orgs", json=body, headers=reg.headers)) == "ORG_PARENT_NOT_FOUND"


def test_claim_and_verify_membership_is_audited(client, auth, db, make_org):
    org = make_org()
    merchant = auth.login("m-1")
    claim = client.post(f"/api/v1/orgs/{org.id}/memberships",
                        json={"standing": "probationary", "floating": True, "home_org_name": "岑溪市某村党支部",
                              "status": "verified"},
                        headers=merchant.headers)
    assert claim.status_code == 422  # mass assignment of status is refused
    claim = client.post(f"/api/v1/orgs/{org.id}/memberships",
                        json={"standing": "probationary", "floating": True, "home_org_name": "岑溪市某村党支部"},
                        headers=merchant.headers)
    assert claim.status_code == 201, claim.get_json()
    assert claim.get_json()["status"] == "pending"
    again = client.post(f"/api/v1/orgs/{org.id}/memberships", json={"standing": "formal"}, headers=merchant.headers)
    assert again.status_code == 409 and error_code(again) == "MEMBERSHIP_EXISTS"

    sec = auth.login("sec-1", role="branch_secretary", scope=f"org:{org.id}")
    listed = client.get(f"/api/v1/orgs/{org.id}/memberships?status=pending", headers=sec.headers).get_json()
    assert [m["user_id"] for m in listed["items"]] == [merchant.user_id]
    membership_id = claim.get_json()["id"]
    review = client.post(f"/api/v1/memberships/{membership_id}/review", json={"decision": "approve"},
                         headers=sec.headers)
    assert review.status_code == 200 and review.get_json()["status"] == "verified"
    entry = db.session.query(AuditEntry).filter_by(action="membership.approve", target_id=str(membership_id)).one()
    assert entry.actor_id == sec.user_id and entry.actor_role == "branch_secretary"
    assert entry.before == {"status": "pending"} and entry.after["status"] == "verified"
    assert entry.request_id

    me = client.get("/api/v1/me", headers=merchant.headers).get_json()
    assert me["memberships"][0]["org_name"] == "东中市场党支部"
    assert me["memberships"][0]["status"] == "verified"
    assert me["memberships"][0]["home_org_name"] == "岑溪市某村党支部"


def test_floating_member_must_name_home_org(client, auth, make_org):
    org = make_org()
    user = auth.login("u-1")
    response = client.post(f"/api/v1/orgs/{org.id}/memberships", json={"standing": "formal", "floating": True},
                           headers=user.headers)
    assert error_code(response) == "HOME_ORG_REQUIRED"


def test_secretary_of_a_cannot_verify_members_of_b(client, auth, db, make_org):
    org_a = make_org(name="A 支部")
    org_b = make_org(name="B 支部")
    add_member("member-b", org_b, status="pending")
    membership = db.session.query(Membership).filter_by(org_id=org_b.id).one()
    sec_a = auth.login("sec-a", role="branch_secretary", scope=f"org:{org_a.id}")
    response = client.post(f"/api/v1/memberships/{membership.id}/review", json={"decision": "approve"},
                           headers=sec_a.headers)
    assert response.status_code == 404 and error_code(response) == "MEMBERSHIP_NOT_FOUND"
    listing = client.get(f"/api/v1/orgs/{org_b.id}/memberships", headers=sec_a.headers)
    assert error_code(listing) == "ORG_NOT_FOUND"
    db.session.expire_all()
    assert db.session.get(Membership, membership.id).status == "pending"
    rider = auth.login("rider", role="rider")
    assert error_code(client.post(f"/api/v1/memberships/{membership.id}/review", json={"decision": "approve"},
                                  headers=rider.headers)) == "FORBIDDEN"


def test_committee_secretary_and_regulator_verify_branch_members(client, auth, db, make_org):
    committee = make_org(name="党委", kind="committee", region_code="450400")
    branch = make_org(name="支部", parent=committee)
    add_member("m-1", branch, status="pending")
    add_member("m-2", branch, status="pending")
    first, second = db.session.query(Membership).order_by(Membership.id).all()
    sec = auth.login("sec-c", role="branch_secretary", scope=f"org:{committee.id}")
    assert client.post(f"/api/v1/memberships/{first.id}/review", json={"decision": "approve"},
                       headers=sec.headers).status_code == 200
    reg = auth.login("reg", role="regulator", scope="region:450403")
    no_reason = client.post(f"/api/v1/memberships/{second.id}/review", json={"decision": "reject"}, headers=reg.headers)
    assert error_code(no_reason) == "REASON_REQUIRED"
    rejected = client.post(f"/api/v1/memberships/{second.id}/review", json={"decision": "reject", "reason": "查无此人"},
                           headers=reg.headers)
    assert rejected.get_json()["status"] == "rejected"
    other_reg = auth.login("reg-liling", role="regulator", scope="region:430281")
    assert error_code(client.post(f"/api/v1/memberships/{first.id}/review", json={"decision": "reject", "reason": "x"},
                                  headers=other_reg.headers)) == "MEMBERSHIP_NOT_FOUND"


def test_verified_operator_shows_party_member_and_badge_versions_bump(client, auth, db, make_org, make_market):
    from app.markets.models import Merchant, Stall
    from app.orgs.queries import party_member_operator

    org = make_org()
    market = make_market()
    owner = add_member("merchant-1", org, status="pending")
    merchant = Merchant(owner_id=owner.id, name="李记蔬菜", kind="个体工商户", uscc="91450400MA5KXXXX0X",
                        operator_name="李小兰")
    db.session.add(merchant)
    db.session.flush()
    stall = Stall(market_id=market.id, number="A01", token="tokA01tokA01", merchant_id=merchant.id)
    db.session.add(stall)
    db.session.commit()
    assert party_member_operator(owner.id) is None
    version = stall.badge_version
    membership = db.session.query(Membership).filter_by(user_id=owner.id).one()
    sec = auth.login("sec", role="branch_secretary", scope=f"org:{org.id}")
    client.post(f"/api/v1/memberships/{membership.id}/review", json={"decision": "approve"}, headers=sec.headers)
    db.session.expire_all()
    assert party_member_operator(owner.id) == {"org": "东中市场党支部"}
    assert db.session.get(Stall, stall.id).badge_version == version + 1
    again = client.post(f"/api/v1/memberships/{membership.id}/review",
                        json={"decision": "reject", "reason": "组织关系已转出"}, headers=sec.headers)
    assert again.status_code == 409  # a decided claim is not reviewed twice: it is revoked
    revoked = client.post(f"/api/v1/memberships/{membership.id}/revoke", json={"reason": "组织关系已转出"},
                          headers=sec.headers)
    assert revoked.status_code == 200 and revoked.get_json()["status"] == "rejected"
    db.session.expire_all()
    assert party_member_operator(owner.id) is None
    assert db.session.get(Stall, stall.id).badge_version == version + 2


def test_rider_joins_station_once_with_its_join_code(client, auth, db, make_org):
    station = make_org(name="骑手党支部", sector="rider", station="万秀区美团站", platform="美团")
    market_org = make_org(name="市场支部")
    secretary = auth.login("station-sec", role="branch_secretary", scope=f"org:{station.id}")
    code = client.post(f"/api/v1/orgs/{station.id}/join-code", headers=secretary.headers).get_json()["join_code"]
    rider = auth.login("rider-9")
    first = client.post(f"/api/v1/orgs/{station.id}/riders", json={"join_code": code.lower()}, headers=rider.headers)
    assert first.status_code == 201 and first.get_json()["status"] == "joined"
    second = client.post(f"/api/v1/orgs/{station.id}/riders", headers=rider.headers)
    assert second.status_code == 200 and second.get_json()["joined_at"] == first.get_json()["joined_at"]
    me = client.get("/api/v1/me", headers=rider.headers).get_json()
    assert "rider" in {r["role"] for r in me["roles"]}
    assert me["memberships"][0]["station"] == "万秀区美团站"
    refused = client.post(f"/api/v1/orgs/{market_org.id}/riders", headers=rider.headers)
    assert error_code(refused) == "ORG_NOT_RIDER_STATION"


def test_get_org_needs_login_and_404s(client, auth, make_org):
    org = make_org()
    assert client.get(f"/api/v1/orgs/{org.id}").status_code == 401
    user = auth.login("anyone")
    assert client.get(f"/api/v1/orgs/{org.id}", headers=user.headers).get_json()["name"] == org.name
    assert error_code(client.get("/api/v1/orgs/999999", headers=user.headers)) == "ORG_NOT_FOUND"
