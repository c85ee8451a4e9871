"""Versioned templates: nearest region first, regulators' scope, new version when in use."""
from sqlalchemy import select

from app.core.audit import AuditEntry
from app.pledges.models import PledgeTemplate
from tests.conftest import error_code
from tests.pledges.factories import make_template

ITEMS = ["亮照亮证经营", "明码标价", "不售假冒伪劣商品", "计量准确足量", "文明诚信服务", "门前三包"]


def test_templates_for_a_region_walk_up_the_tree_nearest_first(client, regions):
    national = make_template(None, title="全国通用")
    guangxi = make_template("450000", title="广西")
    wuzhou = make_template("450400", title="梧州")
    make_template("430000", title="湖南")
    make_template("450400", title="梧州（停用）", active=False)

    def titles(query):
        response = client.get(f"/api/v1/pledge-templates{query}")
        assert response.status_code == 200, response.get_json()
        return [t["title"] for t in response.get_json()["items"]]

    assert titles("?region=450403") == ["梧州", "广西", "全国通用"]
    assert titles("?region=450000") == ["广西", "全国通用"]
    assert titles("?region=430281") == ["湖南", "全国通用"]
    assert titles("?region=331081") == ["全国通用"]
    assert set(titles("")) == {"全国通用", "广西", "梧州", "湖南"}
    from app.pledges.services import nearest_template

    assert nearest_template("450405").id == wuzhou.id
    assert nearest_template("331081").id == national.id
    assert guangxi.id != wuzhou.id


def test_templates_by_market_use_the_markets_region(client, make_market):
    market = make_market(region_code="450405")
    make_template("450000", title="广西")
    make_template("450403", title="万秀")
    body = client.get(f"/api/v1/pledge-templates?market_id={market.id}").get_json()
    assert [t["title"] for t in body["items"]] == ["广西"]
    missing = client.get("/api/v1/pledge-templates?market_id=99999")
    assert missing.status_code == 200 and missing.get_json()["items"] == []  # ids are not probed here


def test_regulator_creates_templates_in_scope_only(client, auth, regions, db):
    reg = auth.login("reg-wuzhou", role="regulator", scope="region:450400")
    body = {"title": "梧州市诚信经营承诺书", "items": ITEMS, "region_code": "450403"}
    created = client.post("/api/v1/pledge-templates", json=body, headers=reg.headers)
    assert created.status_code == 201, created.get_json()
    data = created.get_json()
    assert data["version"] == 1 and data["term_months"] == 12 and data["active"] and data["items"] == ITEMS
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "pledge_template.create")).actor_role == "regulator"

    for region in ("430281", "450000", "000000"):
        refused = client.post("/api/v1/pledge-templates", json={**body, "region_code": region}, headers=reg.headers)
        assert refused.status_code == 403 and error_code(refused) == "OUT_OF_SCOPE", region
    unknown = client.post("/api/v1/pledge-templates", json={**body, "region_code": "459999"}, headers=reg.headers)
    assert unknown.status_code == 404 and error_code(unknown) == "REGION_NOT_FOUND"
    empty = client.post("/api/v1/pledge-templates", json={**body, "items": []}, headers=reg.headers)
    assert empty.status_code == 422
    blank_item = client.post("/api/v1/pledge-templates", json={**body, "items": ["明码标价", "  "]}, headers=reg.headers)
    assert blank_item.status_code == 422

    admin = auth.login("ops", role="admin")
    national = client.post("/api/v1/pledge-templates", json={**body, "region_code": "000000"}, headers=admin.headers)
    assert national.status_code == 201 and national.get_json()["region_code"] is None

    merchant = auth.login("m-1", role="merchant")
    assert client.post("/api/v1/pledge-templates", json=body, headers=merchant.headers).status_code == 403


def test_editing_an_unused_template_changes_it_in_place(client, auth, regions):
    reg = auth.login("reg-gx", role="regulator", scope="region:450000")
    template = make_template("450000")
    response = client.put(f"/api/v1/pledge-templates/{template.id}", json={"term_months": 24},
                          headers=reg.headers)
    assert response.status_code == 200
    assert response.get_json()["id"] == template.id and response.get_json()["version"] == 1
    assert response.get_json()["term_months"] == 24
    hunan = auth.login("reg-hn", role="regulator", scope="region:430000")
    refused = client.put(f"/api/v1/pledge-templates/{template.id}", json={"term_months": 6}, headers=hunan.headers)
    assert refused.status_code == 404 and error_code(refused) == "PLEDGE_TEMPLATE_NOT_FOUND"


def test_editing_a_template_in_use_makes_a_new_version_and_pledges_keep_their_text(world, auth, db):
    reg = auth.login("reg-gx", role="regulator", scope="region:450000")
    signed = world.sign().get_json()
    new_items = world.template.items + ["不使用一次性塑料购物袋"]
    response = world.client.put(f"/api/v1/pledge-templates/{world.template.id}",
                                json={"items": new_items, "title": "诚信经营承诺书（2026 版）"},
                                headers=reg.headers)
    assert response.status_code == 200, response.get_json()
    new = response.get_json()
    assert new["id"] != world.template.id and new["version"] == 2 and new["active"]
    assert new["family_id"] == world.template.family_id and new["items"] == new_items

    db.session.expire_all()
    old = db.session.get(PledgeTemplate, world.template.id)
    assert old.active is False and old.items == world.template.items
    pledge = world.client.get(f"/api/v1/pledges/{signed['id']}", headers=world.owner.headers).get_json()
    assert pledge["items"] == signed["items"] and pledge["template_version"] == 1

    listed = world.client.get("/api/v1/pledge-templates?region=450403").get_json()["items"]
    assert [t["id"] for t in listed] == [new["id"]]

    stale_edit = world.client.put(f"/api/v1/pledge-templates/{old.id}", json={"term_months": 6},
                                  headers=reg.headers)
    assert stale_edit.status_code == 409 and error_code(stale_edit) == "PLEDGE_TEMPLATE_SUPERSEDED"
    world.review(signed["id"], "reject", reason="请按新版承诺书重新签署")
    stale_sign = world.sign(template_id=old.id)
    assert stale_sign.status_code == 409 and error_code(stale_sign) == "PLEDGE_TEMPLATE_INACTIVE"
    fresh = world.sign(template_id=new["id"])
    assert fresh.status_code == 201 and fresh.get_json()["items"] == new_items
    assert fresh.get_json()["template_version"] == 2

    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "pledge_template.new_version"))
    assert entry.before["version"] == 1 and entry.after["version"] == 2


def test_a_template_can_be_retired(client, auth, regions):
    reg = auth.login("reg-gx", role="regulator", scope="region:450000")
    template = make_template("450000")
    response = client.put(f"/api/v1/pledge-templates/{template.id}", json={"active": False}, headers=reg.headers)
    assert response.status_code == 200 and response.get_json()["active"] is False
    assert client.get("/api/v1/pledge-templates?region=450403").get_json()["total"] == 0
    assert client.get(f"/api/v1/pledge-templates/{template.id}").get_json()["active"] is False
