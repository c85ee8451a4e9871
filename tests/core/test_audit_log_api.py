"""Issue 11: GET /audit-log, the trail for regulators (their region) and administrators (all):
who did what to which object, as whom, before and after, why, in which request."""
from tests.conftest import at, error_code


def test_regulators_read_their_regions_trail_and_admins_all(shop, client, auth, clock, db):
    clock.set(at("2026-03-01 09:00"))
    wanxiu = shop.market()
    changzhou = shop.market(name="长洲区市场", region_code="450405")
    manager = shop.manager(wanxiu)
    other_manager = shop.manager(changzhou, "manager-2")
    shop.stalls(wanxiu, manager, ["A-01"])
    clock.set(at("2026-03-02 09:00"))
    shop.stalls(changzhou, other_manager, ["B-01"])
    assert client.put("/api/v1/me", json={"real_name": "赵卫东"}, headers=manager.headers).status_code == 200
    district = auth.login("reg-wx", role="regulator", scope="region:450403")
    trail = client.get("/api/v1/audit-log?action=stall.", headers=district.headers).get_json()
    assert [(e["action"], e["target_id"]) for e in trail["items"]] == [("stall.create_bulk", str(wanxiu.id))]
    entry = trail["items"][0]
    assert entry["actor"]["name"] == "赵卫东" and entry["actor_role"] == "market_manager"
    assert entry["region_code"] == "450403" and entry["after"]["numbers"] == ["A-01"] and entry["request_id"]
    city = auth.login("reg-city", role="regulator", scope="region:450400")
    assert client.get("/api/v1/audit-log?action=stall.", headers=city.headers).get_json()["total"] == 2
    admin = auth.login("root", role="admin")
    everything = client.get("/api/v1/audit-log", headers=admin.headers).get_json()
    assert everything["total"] >= 4  # role grants (no region) included
    dated = client.get("/api/v1/audit-log?action=stall.&from=2026-03-02&to=2026-03-02", headers=admin.headers)
    assert [e["target_id"] for e in dated.get_json()["items"]] == [str(changzhou.id)]
    by_target = client.get(f"/api/v1/audit-log?target_type=market&target_id={wanxiu.id}", headers=admin.headers)
    assert {e["action"] for e in by_target.get_json()["items"]} == {"stall.create_bulk"}
    assert error_code(client.get("/api/v1/audit-log", headers=manager.headers)) == "FORBIDDEN"
    assert client.get("/api/v1/audit-log?from=2026-13-01", headers=admin.headers).status_code == 422
