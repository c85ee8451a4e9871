"""Coverage figures match counts made here, independently, from the rows the test created,
over a region tree of three levels (450000 -> 450400 -> 450403/450405)."""
from datetime import timedelta

import pytest

from app.extensions import db as _db
from app.identity.services import find_or_create_user
from app.pledges.models import Pledge
from tests.conftest import at, error_code
from tests.pledges.factories import make_merchant, make_stall, make_template

NOW = at("2026-06-01 12:00")
STATES = {
    # state: (stored status, valid_from, valid_until)
    "in_force": ("approved", NOW - timedelta(days=30), NOW + timedelta(days=300)),
    "expired_by_time": ("approved", NOW - timedelta(days=400), NOW - timedelta(days=35)),
    "expired_stored": ("expired", NOW - timedelta(days=500), NOW - timedelta(days=135)),
    "pending": ("pending", None, None),
    "rejected": ("rejected", None, None),
    "revoked": ("revoked", NOW - timedelta(days=60), NOW + timedelta(days=200)),
}
SHOWN = {"licences_shown": 3, "permits_shown": 2}  # what the credentials hook reports per market


@pytest.fixture
def tree(make_market, monkeypatch, clock):
    clock.set(NOW)
    markets = {
        "M1": make_market(name="万秀农贸市场", region_code="450403"),
        "M2": make_market(name="万秀服装市场", region_code="450403"),
        "M3": make_market(name="长洲综合市场", region_code="450405"),
        "M4": make_market(name="梧州市直属市场", region_code="450400"),
        "M5": make_market(name="醴陵陶瓷市场", region_code="430281"),
    }
    template = make_template("450000")
    # merchant: [(market, stall count)], [(market of the pledge, state), ...]
    plan = {
        "A": ([("M1", 2)], [("M1", "rejected"), ("M1", "in_force")]),
        "B": ([("M1", 1)], [("M1", "pending")]),
        "C": ([("M2", 1)], [("M2", "expired_by_time")]),
        "D": ([("M2", 1)], [("M2", "revoked"), ("M2", "expired_stored")]),
        "E": ([("M3", 1), ("M1", 1)], [("M3", "in_force")]),
        "F": ([("M3", 1)], []),
        "G": ([("M4", 1)], [("M4", "in_force")]),
        "H": ([("M5", 1)], [("M5", "in_force")]),
    }
    unclaimed = {"M1": 2, "M2": 1, "M3": 1}
    stalls, pledges = [], []  # (market key, merchant key or None), (market key, merchant key, state)
    for key, (holdings, signed) in plan.items():
        owner = find_or_create_user(f"owner-{key}")
        _db.session.commit()
        merchant = make_merchant(owner.id, name=f"经营户{key}")
        for market_key, n in holdings:
            for i in range(n):
                make_stall(markets[market_key], f"{key}-{i}", merchant)
                stalls.append((market_key, key))
        for market_key, state in signed:
            status, valid_from, valid_until = STATES[state]
            _db.session.add(Pledge(merchant_id=merchant.id, market_id=markets[market_key].id,
                                   template_id=template.id, template_version=1, title=template.title,
                                   items=template.items, term_months=12, signer_name="签署人",
                                   signed_by_id=owner.id, status=status, valid_from=valid_from,
                                   valid_until=valid_until))
            _db.session.commit()
            pledges.append((market_key, key, state))
    for market_key, n in unclaimed.items():
        for i in range(n):
            make_stall(markets[market_key], f"空-{i}")
            stalls.append((market_key, None))

    from app.credentials import queries as credential_queries

    monkeypatch.setattr(credential_queries, "shown_counts_by_market",
                        lambda market_ids, now: {m: dict(SHOWN) for m in market_ids})
    return markets, stalls, pledges


def expected(markets, stalls, pledges, keys):
    """Counts over the markets `keys`, computed from the rows as created."""
    mine = [s for s in stalls if s[0] in keys]
    signed = [p for p in pledges if p[0] in keys]

    def n(*states):
        return sum(1 for p in signed if p[2] in states)

    holders = {merchant for _, merchant in mine if merchant}
    pledgers = {merchant for _, merchant, state in signed if state == "in_force"}
    return {
        "markets": len(keys), "stalls": len(mine), "stalls_claimed": sum(1 for s in mine if s[1]),
        "merchants": len(holders), "licences_shown": SHOWN["licences_shown"] * len(keys),
        "permits_shown": SHOWN["permits_shown"] * len(keys),
        "pledges_in_force": n("in_force"), "pledges_pending": n("pending"),
        "pledges_rejected": n("rejected"), "pledges_revoked": n("revoked"),
        "pledges_expired": n("expired_by_time", "expired_stored"),
        "merchants_with_pledge_in_force": len(pledgers),
        "pledge_rate": round(len(pledgers) / len(holders), 4) if holders else None,
    }


def test_city_overview_matches_independent_counts(client, auth, tree):
    markets, stalls, pledges = tree
    reg = auth.login("reg-wuzhou", role="regulator", scope="region:450400")
    response = client.get("/api/v1/stats/overview", headers=reg.headers)  # default: own region
    assert response.status_code == 200, response.get_json()
    body = response.get_json()

    assert body["region"]["code"] == "450400" and body["region"]["name"] == "梧州市"
    assert body["region"]["totals"] == expected(markets, stalls, pledges, {"M1", "M2", "M3", "M4"})
    children = {c["code"]: c["totals"] for c in body["children"]}
    assert children == {"450403": expected(markets, stalls, pledges, {"M1", "M2"}),
                        "450405": expected(markets, stalls, pledges, {"M3"})}
    assert body["direct"] == expected(markets, stalls, pledges, {"M4"})
    rows = {m["id"]: m["totals"] for m in body["markets"]}
    assert set(rows) == {markets[k].id for k in ("M1", "M2", "M3", "M4")}
    for key in ("M1", "M2", "M3", "M4"):
        assert rows[markets[key].id] == expected(markets, stalls, pledges, {key}), key
    # E holds stalls in 万秀 and 长洲 but is one household in the city's figure.
    assert body["region"]["totals"]["merchants"] == 7


def test_province_overview_rolls_up_two_levels(client, auth, tree):
    markets, stalls, pledges = tree
    reg = auth.login("reg-guangxi", role="regulator", scope="region:450000")
    body = client.get("/api/v1/stats/overview?region=450000", headers=reg.headers).get_json()
    everything = {"M1", "M2", "M3", "M4"}
    assert body["region"]["totals"] == expected(markets, stalls, pledges, everything)
    assert [(c["code"], c["totals"]) for c in body["children"]] == [
        ("450400", expected(markets, stalls, pledges, everything))]
    assert body["direct"] == expected(markets, stalls, pledges, set())

    county = client.get("/api/v1/stats/overview?region=450403", headers=reg.headers).get_json()
    assert county["children"] == []
    assert county["region"]["totals"] == county["direct"] == expected(markets, stalls, pledges, {"M1", "M2"})


def test_national_overview_for_administrators(client, auth, tree):
    markets, stalls, pledges = tree
    admin = auth.login("ops", role="admin")
    body = client.get("/api/v1/stats/overview", headers=admin.headers).get_json()
    assert body["region"] == {"code": "000000", "name": "全国", "level": 0,
                              "totals": expected(markets, stalls, pledges, set(markets))}
    children = {c["code"]: c["totals"] for c in body["children"]}
    assert set(children) == {"330000", "430000", "450000"}
    assert children["430000"] == expected(markets, stalls, pledges, {"M5"})
    assert children["330000"]["markets"] == 0 and children["330000"]["pledge_rate"] is None


def test_regulator_sees_only_their_regions_figures(client, auth, tree):
    reg = auth.login("reg-wuzhou", role="regulator", scope="region:450400")
    for region in ("430000", "430281", "450000", "000000"):
        response = client.get(f"/api/v1/stats/overview?region={region}", headers=reg.headers)
        assert response.status_code == 403 and error_code(response) == "OUT_OF_SCOPE", region
    unknown = client.get("/api/v1/stats/overview?region=459999", headers=reg.headers)
    assert unknown.status_code == 404 and error_code(unknown) == "REGION_NOT_FOUND"
    malformed = client.get("/api/v1/stats/overview?region=45", headers=reg.headers)
    assert malformed.status_code == 422 and error_code(malformed) == "VALIDATION_ERROR"

    for role, scope in (("rider", None), ("merchant", None), ("market_manager", "market:1")):
        other = auth.login(f"user-{role}", role=role, scope=scope)
        response = client.get("/api/v1/stats/overview", headers=other.headers)
        assert response.status_code == 403 and error_code(response) == "FORBIDDEN"
    assert client.get("/api/v1/stats/overview").status_code == 401

    auth.grant("reg-two", "regulator", "region:450400")
    two = auth.login("reg-two", role="regulator", scope="region:430000")
    response = client.get("/api/v1/stats/overview", headers=two.headers)
    assert response.status_code == 422 and error_code(response) == "STATS_REGION_REQUIRED"
    assert client.get("/api/v1/stats/overview?region=430281", headers=two.headers).status_code == 200


def test_pledges_counted_by_time_not_by_batch(client, auth, tree, clock):
    markets, stalls, pledges = tree
    reg = auth.login("reg-wuzhou", role="regulator", scope="region:450400")
    clock.set(NOW + timedelta(days=301))  # every in-force pledge is past its term now
    totals = client.get("/api/v1/stats/overview", headers=reg.headers).get_json()["region"]["totals"]
    assert totals["pledges_in_force"] == 0 and totals["merchants_with_pledge_in_force"] == 0
    assert totals["pledges_expired"] == 3 + 2  # A, E, G + C, D
    assert totals["pledges_revoked"] == 1


def test_other_features_can_add_a_section(client, auth, tree, monkeypatch):
    from app.stats import services

    monkeypatch.setattr(services, "REGION_SECTIONS", {})
    services.register_region_section("orgs", lambda region_code, now: {"region": region_code, "branches": 4})
    reg = auth.login("reg-wuzhou", role="regulator", scope="region:450400")
    body = client.get("/api/v1/stats/overview", headers=reg.headers).get_json()
    assert body["sections"] == {"orgs": {"region": "450400", "branches": 4}}


def test_the_real_credentials_hook_is_called(client, auth, make_market):
    make_market(region_code="450403")
    reg = auth.login("reg-wuzhou", role="regulator", scope="region:450400")
    totals = client.get("/api/v1/stats/overview", headers=reg.headers).get_json()["region"]["totals"]
    assert totals["markets"] == 1 and totals["licences_shown"] == 0 and totals["permits_shown"] == 0
