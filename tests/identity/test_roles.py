"""Roles with scopes: regional hierarchy by code prefix, grants audited, CLI grant."""
from app.identity.auth import Target, grant_covers
from app.identity.models import RoleGrant
from app.core.regions import code_prefix, region_covers
from tests.conftest import error_code


def test_region_prefix_rule():
    assert code_prefix("450000") == "45"
    assert code_prefix("450400") == "4504"
    assert code_prefix("450403") == "450403"
    assert region_covers("450400", "450403")
    assert region_covers("450000", "450403")
    assert not region_covers("450400", "430281")
    assert not region_covers("450403", "450400")


def test_grant_covers_by_scope_type():
    region = RoleGrant(role="regulator", scope_type="region", scope_id="450400")
    market = RoleGrant(role="market_manager", scope_type="market", scope_id="7")
    org = RoleGrant(role="branch_secretary", scope_type="org", scope_id="3")
    assert grant_covers(region, Target(region_code="450403"))
    assert not grant_covers(region, Target(region_code="430281"))
    assert grant_covers(market, Target(region_code="450403", market_id=7))
    assert not grant_covers(market, Target(region_code="450403", market_id=8))
    assert grant_covers(org, Target(org_ids=(5, 3)))
    assert not grant_covers(org, Target(org_ids=(5,)))


def test_regulator_of_450400_creates_markets_in_450403_not_430281(client, auth, regions):
    reg = auth.login("reg-wuzhou", role="regulator", scope="region:450400")
    ok = client.post("/api/v1/markets", json={"name": "万秀市场", "region_code": "450403"}, headers=reg.headers)
    assert ok.status_code == 201, ok.get_json()
    other = client.post("/api/v1/markets", json={"name": "醴陵市场", "region_code": "430281"}, headers=reg.headers)
    assert other.status_code == 403
    assert error_code(other) == "OUT_OF_SCOPE"


def test_rider_cannot_create_markets(client, auth, regions):
    rider = auth.login("rider-1", role="rider")
    response = client.post("/api/v1/markets", json={"name": "x", "region_code": "450403"}, headers=rider.headers)
    assert response.status_code == 403
    assert error_code(response) == "FORBIDDEN"


def test_regulator_appoints_manager_in_region_and_it_is_audited(client, auth, db, make_market):
    from app.core.audit import AuditEntry

    wanxiu = make_market(region_code="450403")
    liling = make_market(name="醴陵市场", region_code="430281")
    reg = auth.login("reg-wuzhou", role="regulator", scope="region:450400")
    response = client.post(f"/api/v1/markets/{wanxiu.id}/managers",
                           json={"openid": "mgr-1", "reason": "市场推荐"}, headers=reg.headers)
    assert response.status_code == 201
    assert response.get_json()["scope"] == f"market:{wanxiu.id}"
    entry = db.session.query(AuditEntry).filter_by(action="role.grant", target_id=str(response.get_json()["user_id"])).one()
    assert entry.actor_id == reg.user_id and entry.actor_role == "regulator"
    assert entry.after == {"role": "market_manager", "scope": f"market:{wanxiu.id}"}
    assert entry.reason == "市场推荐" and entry.request_id

    refused = client.post(f"/api/v1/markets/{liling.id}/managers", json={"openid": "mgr-2"}, headers=reg.headers)
    assert refused.status_code == 404

    manager = auth.login("mgr-1")
    assert client.get(f"/api/v1/markets/{wanxiu.id}", headers=manager.headers).status_code == 200
    assert client.get(f"/api/v1/markets/{liling.id}", headers=manager.headers).status_code == 404


def test_me_lists_roles_with_scopes(client, auth, regions):
    reg = auth.login("reg-wuzhou", role="regulator", scope="region:450400")
    roles = client.get("/api/v1/me", headers=reg.headers).get_json()["roles"]
    assert roles == [{"id": roles[0]["id"], "role": "regulator", "label": "市场监管人员", "scope": "region:450400"}]


def test_cli_grant_creates_user_and_rejects_bad_scope(app, db, regions):
    from app.identity.models import User

    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "grant", "ops-1", "regulator", "--scope", "region:450400"])
    assert result.exit_code == 0, result.output
    assert db.session.query(User).filter_by(openid="ops-1").one().grants[0].scope == "region:450400"
    bad = runner.invoke(args=["users", "grant", "ops-1", "regulator", "--scope", "region:999999"])
    assert bad.exit_code != 0 and "行政区划不存在" in bad.output
    bad_role = runner.invoke(args=["users", "grant", "ops-1", "king"])
    assert bad_role.exit_code != 0 and "角色不存在" in bad_role.output
