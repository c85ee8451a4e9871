"""Who may review, revoke, list and export: role and scope (R7)."""
from datetime import datetime


from tests.conftest import at, error_code, xlsx_table
from tests.pledges.factories import make_merchant, make_stall


def test_a_rider_or_a_merchant_cannot_review_or_revoke(world, auth):
    pledge = world.sign().get_json()
    rider = auth.login("rider-1", role="rider")
    for who in (rider, world.owner):
        response = world.review(pledge["id"], "approve", who=who)
        assert response.status_code == 403 and error_code(response) == "FORBIDDEN"
        response = world.revoke(pledge["id"], who=who)
        assert response.status_code == 403 and error_code(response) == "FORBIDDEN"
        queue = world.client.get(f"/api/v1/markets/{world.market.id}/pledges", headers=who.headers)
        assert queue.status_code == 403


def test_a_manager_cannot_review_another_markets_pledges(world, auth, client):
    pledge = world.sign().get_json()
    other_manager = auth.login("mgr-changzhou", role="market_manager",
                               scope=f"market:{world.other_market.id}")
    response = world.review(pledge["id"], "approve", who=other_manager)
    assert response.status_code == 404 and error_code(response) == "PLEDGE_NOT_FOUND"
    queue = client.get(f"/api/v1/markets/{world.market.id}/pledges", headers=other_manager.headers)
    assert queue.status_code == 404 and error_code(queue) == "MARKET_NOT_FOUND"
    export = client.get(f"/api/v1/markets/{world.market.id}/pledges.xlsx", headers=other_manager.headers)
    assert export.status_code == 404 and error_code(export) == "MARKET_NOT_FOUND"
    assert world.review(pledge["id"], "approve").status_code == 200
    revoke = world.revoke(pledge["id"], who=other_manager)
    assert revoke.status_code == 404 and error_code(revoke) == "PLEDGE_NOT_FOUND"


def test_a_regulator_acts_in_their_region_only(world, auth):
    pledge = world.sign().get_json()
    hunan = auth.login("reg-hunan", role="regulator", scope="region:430000")
    response = world.review(pledge["id"], "approve", who=hunan)
    assert response.status_code == 404 and error_code(response) == "PLEDGE_NOT_FOUND"
    wuzhou = auth.login("reg-wuzhou", role="regulator", scope="region:450400")
    assert world.review(pledge["id"], "approve", who=wuzhou).status_code == 200
    revoked = world.revoke(pledge["id"], reason="抽检不合格", who=wuzhou)
    assert revoked.status_code == 200
    from app.core.audit import AuditEntry
    from app.extensions import db

    entry = db.session.query(AuditEntry).filter_by(action="pledge.revoke").one()
    assert entry.actor_role == "regulator" and entry.actor_id == wuzhou.user_id


def test_review_of_an_unknown_pledge_is_404(world):
    response = world.review(987654, "approve")
    assert response.status_code == 404 and error_code(response) == "PLEDGE_NOT_FOUND"


def test_queue_is_oldest_first_filtered_and_paginated(world, auth, clock):
    clock.set(at("2026-03-01 09:00"))
    pledges = []
    for index in range(3):
        owner = auth.login(f"merchant-q{index}", role="merchant")
        merchant = make_merchant(owner.user_id, name=f"摊主{index}")
        make_stall(world.market, f"Q-{index}", merchant)
        clock.set(at(f"2026-03-0{index + 1} 09:00"))
        pledges.append(world.sign(who=owner, merchant_id=merchant.id).get_json()["id"])
    world.review(pledges[1], "approve")
    url = f"/api/v1/markets/{world.market.id}/pledges"
    everything = world.client.get(url, headers=world.manager.headers).get_json()
    assert [p["id"] for p in everything["items"]] == pledges and everything["total"] == 3
    pending = world.client.get(url + "?status=pending&per_page=1&page=2", headers=world.manager.headers).get_json()
    assert pending["total"] == 2 and [p["id"] for p in pending["items"]] == [pledges[2]]
    approved = world.client.get(url + "?status=approved", headers=world.manager.headers).get_json()
    assert [p["id"] for p in approved["items"]] == [pledges[1]]
    clock.set(at("2027-03-04 00:00"))  # approved 2026-03-03, 12 months
    expired = world.client.get(url + "?status=expired", headers=world.manager.headers).get_json()
    assert [p["id"] for p in expired["items"]] == [pledges[1]]
    assert world.client.get(url + "?status=approved", headers=world.manager.headers).get_json()["total"] == 0
    bad = world.client.get(url + "?status=whatever", headers=world.manager.headers)
    assert bad.status_code == 422 and error_code(bad) == "VALIDATION_ERROR"


def test_xlsx_export_has_full_signer_names_and_no_phone(world, db, clock):
    from app.identity.models import User

    owner_user = db.session.get(User, world.owner.user_id)
    owner_user.phone = "13800138000"
    db.session.commit()
    clock.set(at("2026-03-01 09:00"))
    pledge = world.sign(signer_name="李小兰", extra_commitments="=HYPERLINK(\"x\")").get_json()
    world.review(pledge["id"], "approve")
    response = world.client.get(f"/api/v1/markets/{world.market.id}/pledges.xlsx",
                                headers=world.manager.headers)
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    heading, header, rows, sheet = xlsx_table(response.data)
    assert len(rows) == 1 and "诚信经营承诺台账" in heading[0]
    record = dict(zip(header, rows[0]))
    assert record["签署人"] == "李小兰" and record["摊位号"] == "A-01"
    assert record["状态"] == "生效中" and record["有效期至"] == datetime(2027, 3, 1)
    # Shown as typed, never a live formula: a text cell with Excel's quote prefix.
    extra = sheet.cell(row=sheet.max_row, column=header.index("补充承诺") + 1)
    assert extra.value == '=HYPERLINK("x")' and extra.data_type == "s" and extra.quotePrefix
    assert not any("1380013" in str(value) for r in rows for value in r if value is not None)
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]
