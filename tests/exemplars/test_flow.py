"""Issue 16 part B end to end: criteria → candidates → confer → the title on the public badge
switches off at a permit's expiry and on an upheld complaint, comes back on its own, and ends
with its year; the market title; withdrawal; bad input and other regions' regulators."""
from datetime import timedelta

from sqlalchemy import select

from app.core.audit import AuditEntry
from tests.conftest import at, error_code

STALLS = "/api/v1/models/candidates?region=450403&kind=stall"


def _exemplar(badge: dict) -> dict | None:
    return next((item for item in badge["items"] if item["key"] == "exemplar"), None)


def _badge(client, token) -> dict:
    response = client.get(f"/api/v1/public/stalls/{token}")
    assert response.status_code == 200
    return response.get_json()


def _setup(shop, auth, clock, until="2026-09-30"):
    clock.set(at("2026-01-05 09:00"))
    market, manager, token, login, merchant_id = shop.trusted_stall(until=until, pledge=True)
    regulator = auth.login("reg-wx", role="regulator", scope="region:450403")
    return market, manager, token, login, merchant_id, regulator


def test_criteria_candidates_confer_suspend_reinstate_and_end(shop, client, auth, clock, db):
    market, manager, token, login, merchant_id, regulator = _setup(shop, auth, clock)
    h = regulator.headers
    # Defaults: the pledge has been in force for days, not 180.
    criteria = client.get("/api/v1/models/criteria?region=450403", headers=h).get_json()
    assert criteria["is_default"] and criteria["stall"]["pledge_days"] == 180
    assert client.get(STALLS, headers=h).get_json()["total"] == 0
    every = client.get(STALLS + "&all=true", headers=h).get_json()
    assert every["total"] == 1
    checks = {c["key"]: c["ok"] for c in every["items"][0]["criteria"]}
    assert checks == {"credentials": True, "pledge": False, "no_upheld": True, "party_member": False}
    refused = client.post("/api/v1/models", json={"kind": "stall", "target": token, "citation": "诚信经营"}, headers=h)
    assert error_code(refused) == "EXEMPLAR_CRITERIA_NOT_MET" and refused.status_code == 409
    assert refused.get_json()["error"]["details"]["failing"] == [
        {"key": "pledge", "label": "诚信经营承诺连续生效满 180 天"}]
    assert "诚信经营承诺连续生效满 180 天" in refused.get_json()["error"]["message"]

    # 181 days on, the stall is a candidate; conferred for a year, audited.
    clock.set(at("2026-07-05 09:00"))
    found = client.get(STALLS, headers=h).get_json()
    assert found["total"] == 1 and found["items"][0]["target"] == token and found["items"][0]["meets"]
    conferred = client.post("/api/v1/models", json={"kind": "stall", "target": token,
                                                    "citation": "亮照亮证齐全，诚信经营，群众满意"}, headers=h)
    assert conferred.status_code == 201, conferred.get_json()
    title = conferred.get_json()
    assert title["title"] == "示范摊位" and title["status"] == "active" and title["valid_through"] == "2027-07-04"
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "exemplar.confer")).region_code == "450403"
    again = client.post("/api/v1/models", json={"kind": "stall", "target": token, "citation": "再次"}, headers=h)
    assert error_code(again) == "EXEMPLAR_ALREADY_CONFERRED"
    badge = _badge(client, token)
    assert _exemplar(badge)["ok"] is True and _exemplar(badge)["detail"]["citation"] == "亮照亮证齐全，诚信经营，群众满意"
    assert badge["changes_at"] == "2026-10-01T00:00:00+08:00"  # the permit's end
    assert "示范摊位" in client.get(f"/s/{token}").get_data(as_text=True)

    # The permit expires: the title is off at that very instant, with the reason.
    clock.set(at("2026-09-30 23:59:59"))
    assert _exemplar(_badge(client, token))["ok"] is True
    clock.set(at("2026-10-01 00:00"))
    off = _exemplar(_badge(client, token))
    assert off["ok"] is False and "食品经营许可证已于 2026-09-30 到期" in off["reason"]
    page = client.get(f"/s/{token}").get_data(as_text=True)
    assert "称号暂停显示" in page and "已于 2026-09-30 到期" in page

    # A new permit verified: back on its own.
    clock.set(at("2026-10-08 10:00"))
    permit = shop.credential(login, merchant_id, kind="food_business", number="JY14504030099999",
                             valid_until="2029-12-31")
    assert _exemplar(_badge(client, token))["ok"] is False  # pending review
    shop.verify(manager, permit)
    assert _exemplar(_badge(client, token))["ok"] is True

    # The title ends with its year (the pledge renewed so that only the year decides).
    clock.set(at("2026-12-20 10:00"))
    shop.approved_pledge(login, merchant_id, manager)
    clock.set(at("2027-07-04 23:59:59"))
    assert _exemplar(_badge(client, token))["ok"] is True
    clock.set(at("2027-07-05 00:00"))
    assert _exemplar(_badge(client, token)) is None
    listed = client.get("/api/v1/models?region=450403&status=ended", headers=h).get_json()
    assert listed["total"] == 1 and listed["items"][0]["status"] == "ended"


def test_an_upheld_complaint_suspends_the_title_until_its_window_passes(shop, client, auth, clock, db):
    market, manager, token, login, merchant_id, regulator = _setup(shop, auth, clock, until="2029-12-31")
    put = client.put("/api/v1/models/criteria", json={"region": "450400", "stall": {"pledge_days": 0}},
                     headers=auth.login("reg-city", role="regulator", scope="region:450400").headers)
    assert put.status_code == 200 and put.get_json()["stall"]["pledge_days"] == 0
    inherited = client.get("/api/v1/models/criteria?region=450403", headers=regulator.headers).get_json()
    assert inherited["source_region"] == "450400" and inherited["stall"]["pledge_days"] == 0
    assert client.post("/api/v1/models", json={"kind": "stall", "target": token, "citation": "诚信经营标兵"},
                       headers=regulator.headers).status_code == 201
    assert _exemplar(_badge(client, token))["ok"] is True
    consumer = auth.login("consumer-1")
    created = client.post(f"/api/v1/public/stalls/{token}/feedback", json={"category": "缺斤短两", "text": "少了二两"},
                          headers=consumer.headers)
    clock.set(at("2026-01-06 10:00"))
    upheld = client.post(f"/api/v1/feedback/{created.get_json()['id']}/review",
                         json={"decision": "uphold", "reason": "复秤属实"}, headers=manager.headers)
    assert upheld.status_code == 200
    off = _exemplar(_badge(client, token))
    assert off["ok"] is False and "近 90 天有经核实的投诉或举报" in off["reason"]
    assert client.get(STALLS, headers=regulator.headers).get_json()["total"] == 0
    clock.set(at("2026-01-06 10:00") + timedelta(days=90))
    assert _exemplar(_badge(client, token))["ok"] is True


def test_withdraw_with_reason_audited_and_the_badge_follows(shop, client, auth, clock, db):
    market, manager, token, login, merchant_id, regulator = _setup(shop, auth, clock, until="2029-12-31")
    client.put("/api/v1/models/criteria", json={"region": "450403", "stall": {"pledge_days": 0}},
               headers=regulator.headers)
    title = client.post("/api/v1/models", json={"kind": "stall", "target": token, "citation": "诚信经营"},
                        headers=regulator.headers).get_json()
    no_reason = client.post(f"/api/v1/models/{title['id']}/withdraw", json={"reason": ""}, headers=regulator.headers)
    assert no_reason.status_code == 422
    done = client.post(f"/api/v1/models/{title['id']}/withdraw", json={"reason": "经营者要求"}, headers=regulator.headers)
    assert done.status_code == 200 and done.get_json()["status"] == "withdrawn"
    assert _exemplar(_badge(client, token)) is None
    twice = client.post(f"/api/v1/models/{title['id']}/withdraw", json={"reason": "x"}, headers=regulator.headers)
    assert error_code(twice) == "EXEMPLAR_NOT_ACTIVE"
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "exemplar.withdraw"))
    assert entry.reason == "经营者要求" and entry.before["status"] == "active"
    # Conferred again after a withdrawal: a new record.
    assert client.post("/api/v1/models", json={"kind": "stall", "target": token, "citation": "整改到位"},
                       headers=regulator.headers).status_code == 201


def test_party_member_title_needs_a_verified_member(shop, client, auth, clock):
    market, manager, token, login, merchant_id, regulator = _setup(shop, auth, clock, until="2029-12-31")
    client.put("/api/v1/models/criteria", json={"region": "450403", "stall": {"pledge_days": 0}},
               headers=regulator.headers)
    refused = client.post("/api/v1/models", json={"kind": "stall", "target": token, "citation": "党员带头",
                                                  "title": "党员示范户"}, headers=regulator.headers)
    assert error_code(refused) == "EXEMPLAR_CRITERIA_NOT_MET"
    assert refused.get_json()["error"]["details"]["failing"] == [{"key": "party_member", "label": "经营者为经核实的党员"}]
    wrong = client.post("/api/v1/models", json={"kind": "market", "target": str(market.id), "citation": "x",
                                                "title": "示范摊位"}, headers=regulator.headers)
    assert error_code(wrong) == "EXEMPLAR_TITLE_INVALID"


def test_bad_input_and_other_regions(shop, client, auth, clock, db):
    market, manager, token, login, merchant_id, regulator = _setup(shop, auth, clock, until="2029-12-31")
    h = regulator.headers
    other = auth.login("reg-cz", role="regulator", scope="region:450405")  # 长洲区
    assert error_code(client.get(STALLS, headers=other.headers)) == "OUT_OF_SCOPE"
    assert error_code(client.put("/api/v1/models/criteria", json={"region": "450403"}, headers=other.headers)) \
        == "OUT_OF_SCOPE"
    confer = {"kind": "stall", "target": token, "citation": "诚信经营"}
    assert client.post("/api/v1/models", json=confer, headers=other.headers).status_code in (403, 404)
    assert error_code(client.get("/api/v1/models/candidates?region=999999&kind=stall", headers=h)) == "REGION_NOT_FOUND"
    assert client.get("/api/v1/models/candidates?region=450403&kind=shop", headers=h).status_code == 422
    assert error_code(client.post("/api/v1/models", json={**confer, "target": "NoSuchToken1"}, headers=h)) \
        == "EXEMPLAR_TARGET_NOT_FOUND"
    assert error_code(client.post("/api/v1/models", json={"kind": "market", "target": "98765", "citation": "x"},
                                  headers=h)) == "EXEMPLAR_TARGET_NOT_FOUND"
    assert client.post("/api/v1/models", json={**confer, "citation": "长" * 201}, headers=h).status_code == 422
    assert client.post("/api/v1/models", json={**confer, "kind": "shop"}, headers=h).status_code == 422
    client.put("/api/v1/models/criteria", json={"region": "450403", "stall": {"pledge_days": 0}}, headers=h)
    risky = client.post("/api/v1/models", json={**confer, "citation": "这里有违禁词"}, headers=h)
    assert error_code(risky) == "CONTENT_RISKY"
    from app.exemplars.models import ExemplarTitle

    assert db.session.scalar(select(ExemplarTitle)) is None  # nothing half-saved
    assert _exemplar(_badge(client, token)) is None
    bad = client.put("/api/v1/models/criteria", json={"region": "450403", "market": {"full_badge_pct": 150}}, headers=h)
    assert bad.status_code == 422
    merchant = auth.login("merchant-a")
    assert error_code(client.get(STALLS, headers=merchant.headers)) == "FORBIDDEN"


def test_criteria_inherit_down_the_tree_and_candidates_span_regions(shop, client, auth, clock, db):
    """A city's regulator lists candidates of two counties: one with its own criteria, one
    inheriting the city's (nearest region wins), in one paged list."""
    market, manager, token, login, merchant_id, regulator = _setup(shop, auth, clock, until="2029-12-31")
    city = auth.login("reg-city", role="regulator", scope="region:450400")
    other_market = shop.market(name="梧州市长洲区农贸市场", region_code="450405")
    other_manager = shop.manager(other_market, openid="manager-cz")
    other_stall = shop.stalls(other_market, other_manager, ["C-01"])[0]["token"]
    b_login, b_id = shop.merchant(openid="merchant-b", uscc="91110000802100433B", name="长洲区水果店")
    shop.claim(b_login, b_id, other_stall)
    shop.review_claim(other_manager, other_stall)
    for credential in (shop.credential(b_login, b_id, long_term=True, number="91110000802100433B"),
                       shop.credential(b_login, b_id, kind="food_business", number="JY2", valid_until="2029-12-31")):
        shop.verify(other_manager, credential)
    shop.approved_pledge(b_login, b_id, other_manager)
    assert client.put("/api/v1/models/criteria", json={"region": "450400", "stall": {"pledge_days": 0}},
                      headers=city.headers).status_code == 200
    # 万秀区 keeps the default 180 days of its own.
    own = client.put("/api/v1/models/criteria", json={"region": "450403", "stall": {"pledge_days": 180}},
                     headers=regulator.headers).get_json()
    assert own["source_region"] == "450403" and own["stall"]["pledge_days"] == 180
    found = client.get("/api/v1/models/candidates?region=450400&kind=stall", headers=city.headers).get_json()
    assert [item["target"] for item in found["items"]] == [other_stall]
    assert found["items"][0]["criteria_region"] == "450400"
    every = client.get("/api/v1/models/candidates?region=450400&kind=stall&all=true&per_page=1",
                       headers=city.headers).get_json()
    assert every["total"] == 2 and len(every["items"]) == 1  # A-01 and C-01 (vacant A-02 is not in business)
