"""Coverage figures match counts made here, independently, from the rows the test created,
over a region tree of three levels (450000 -> 450400 -> 450403/450405)."""
from datetime import timedelta

import pytest

from sqlalchemy import select

from app.extensions import db as _db
from app.markets.models import Merchant
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
DAY = timedelta(days=1)
CREDENTIALS = {
    # merchant: [(kind, status, valid_from, valid_until or None for long-term)]: in force now are
    # A's licence and permit, E's licence and one permit, G's long-term licence.
    "A": [("business_licence", "verified", NOW.date() - 30 * DAY, NOW.date() + 200 * DAY),
          ("food_business", "verified", NOW.date() - 30 * DAY, NOW.date() + 100 * DAY)],
    "B": [("business_licence", "verified", NOW.date() - 400 * DAY, NOW.date() - 35 * DAY)],
    "C": [("business_licence", "verified", NOW.date() + 10 * DAY, NOW.date() + 400 * DAY)],
    "D": [("business_licence", "pending", NOW.date() - 30 * DAY, NOW.date() + 200 * DAY)],
    "E": [("business_licence", "verified", NOW.date() - 30 * DAY, NOW.date() + 200 * DAY),
          ("food_business", "verified", NOW.date() - 30 * DAY, NOW.date() + 300 * DAY),
          ("tobacco_retail", "rejected", NOW.date() - 30 * DAY, NOW.date() + 300 * DAY)],
    "G": [("business_licence", "verified", NOW.date() - 300 * DAY, None)],
}
SHOWN = {"A": 1, "E": 1, "G": 0}  # licensed now -> permits in force now
PARTY_MEMBERS = {"A", "E"}  # owners who are verified party members: their stalls are 党员经营户


@pytest.fixture
def tree(make_market, clock):
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
    from app.orgs.models import Membership, PartyOrg

    branch = PartyOrg(name="万秀农贸市场党支部", kind="branch", sector="market", region_code="450403")
    _db.session.add(branch)
    _db.session.flush()
    for key in PARTY_MEMBERS:
        owner = find_or_create_user(f"owner-{key}")
        _db.session.add(Membership(org_id=branch.id, user_id=owner.id, standing="formal", status="verified"))
    owner_b = find_or_create_user("owner-B")  # a claim still under review does not count
    _db.session.add(Membership(org_id=branch.id, user_id=owner_b.id, standing="formal", status="pending"))
    _db.session.commit()

    from app.credentials.models import Credential

    for key, documents in CREDENTIALS.items():
        owner = find_or_create_user(f"owner-{key}")
        merchant = _db.session.scalar(select(Merchant).where(Merchant.owner_id == owner.id))
        for n, (kind, status, valid_from, valid_until) in enumerate(documents):
            _db.session.add(Credential(merchant_id=merchant.id, kind=kind, number=f"{key}{n}", issuer="市场监管局",
                                       valid_from=valid_from, valid_until=valid_until,
                                       long_term=valid_until is None, photo_key=f"photo-{key}-{n}",
                                       status=status, submitted_by_id=owner.id))
    _db.session.commit()
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
        "merchants": len(holders), "licences_shown": sum(1 for s in mine if s[1] in SHOWN),
        "permits_shown": sum(SHOWN[s[1]] for s in mine if s[1] in SHOWN),
        "pledges_in_force": n("in_force"), "pledges_pending": n("pending"),
        "pledges_rejected": n("rejected"), "pledges_revoked": n("revoked"),
        "pledges_expired": n("expired_by_time", "expired_stored"),
        "merchants_with_pledge_in_force": len(pledgers),
        "pledge_rate": round(len(pledgers) / len(holders), 4) if holders else None,
        "party_households": sum(1 for s in mine if s[1] in PARTY_MEMBERS),
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


def test_party_building_figures_against_a_hand_built_world(client, auth, db, regions, clock):
    """Issue 11 item 7: organisations by kind, verified members (of which floating), rider
    stations and riders, open care stations, this month's activities and attendance, for the
    region and each child region, counted here by hand."""
    from app.activities.models import Activity, CareStation, CheckIn
    from app.orgs.models import Membership, PartyOrg, StationRider

    clock.set(at("2026-06-20 12:00"))
    users = [find_or_create_user(f"u{i}") for i in range(8)]
    db.session.commit()
    branch = PartyOrg(name="万秀区支部", kind="branch", sector="market", region_code="450403")
    station = PartyOrg(name="万秀区美团站支部", kind="joint_branch", sector="rider", region_code="450403")
    committee = PartyOrg(name="长洲区党委", kind="committee", sector="market", region_code="450405")
    elsewhere = PartyOrg(name="醴陵支部", kind="branch", sector="market", region_code="430281")
    db.session.add_all([branch, station, committee, elsewhere])
    db.session.flush()
    verified = [(branch, 0, False), (branch, 1, True), (branch, 2, False), (committee, 3, True), (elsewhere, 4, False)]
    for org, i, floating in verified:
        db.session.add(Membership(org_id=org.id, user_id=users[i].id, standing="formal", floating=floating,
                                  status="verified"))
    db.session.add(Membership(org_id=branch.id, user_id=users[5].id, standing="formal", status="pending"))
    for i in (5, 6, 7):
        db.session.add(StationRider(org_id=station.id, user_id=users[i].id))

    def activity(org, starts, audience="members", status="scheduled"):
        row = Activity(org_id=org.id, type="主题党日", title="t", starts_at=at(starts),
                       ends_at=at(starts) + timedelta(hours=2), checkin_opens_at=at(starts) - timedelta(minutes=30),
                       checkin_closes_at=at(starts) + timedelta(hours=2), audience=audience, status=status)
        db.session.add(row)
        db.session.flush()
        return row

    held = activity(branch, "2026-06-05 09:00")                         # 3 expected, 2 came
    rides = activity(station, "2026-06-10 09:00", "station_riders")       # 3 expected, 3 came
    activity(branch, "2026-06-25 09:00")                                  # not yet begun
    activity(branch, "2026-06-06 09:00", status="cancelled")              # cancelled
    activity(branch, "2026-05-20 09:00")                                  # last month
    for row, who in ((held, (0, 1)), (rides, (5, 6, 7))):
        for i in who:
            db.session.add(CheckIn(activity_id=row.id, user_id=users[i].id, checked_in_at=row.starts_at,
                                   method="rotating_qr", status="on_time", location_verdict="no_geofence"))
    db.session.add_all([
        CareStation(name="东中驿站", region_code="450403", lat=23.4, lng=111.3),
        CareStation(name="停用驿站", region_code="450403", lat=23.4, lng=111.3, closed_at=at("2026-06-01 00:00")),
        CareStation(name="长洲驿站", region_code="450405", lat=23.4, lng=111.3)])
    db.session.commit()

    reg = auth.login("reg-wuzhou", role="regulator", scope="region:450400")
    party = client.get("/api/v1/stats/overview", headers=reg.headers).get_json()["sections"]["party_building"]
    totals = party["totals"]
    assert totals["orgs"] == 3 and totals["orgs_by_kind"] == {"committee": 1, "general_branch": 0, "branch": 1,
                                                              "joint_branch": 1}
    assert (totals["members_verified"], totals["members_floating"]) == (4, 2)
    assert (totals["rider_stations"], totals["riders"], totals["care_stations"]) == (1, 3, 2)
    assert (totals["activities_this_month"], totals["attendance_expected"], totals["attendance_present"]) == (2, 6, 5)
    assert totals["attendance_rate"] == round(5 / 6, 4)
    wanxiu, changzhou = party["children"]["450403"], party["children"]["450405"]
    assert (wanxiu["orgs"], wanxiu["members_verified"], wanxiu["care_stations"]) == (2, 3, 1)
    assert (changzhou["orgs"], changzhou["members_verified"], changzhou["activities_this_month"]) == (1, 1, 0)
    assert changzhou["attendance_rate"] is None


def test_the_real_credentials_hook_is_called(client, auth, make_market):
    make_market(region_code="450403")
    reg = auth.login("reg-wuzhou", role="regulator", scope="region:450400")
    totals = client.get("/api/v1/stats/overview", headers=reg.headers).get_json()["region"]["totals"]
    assert totals["markets"] == 1 and totals["licences_shown"] == 0 and totals["permits_shown"] == 0


def test_the_overview_exports_the_same_figures(client, auth, tree):
    import io
    from urllib.parse import unquote

    from openpyxl import load_workbook

    reg = auth.login("reg-wuzhou", role="regulator", scope="region:450400")
    body = client.get("/api/v1/stats/overview", headers=reg.headers).get_json()
    response = client.get("/api/v1/stats/overview.xlsx", headers=reg.headers)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert "覆盖情况-梧州市-" in unquote(response.headers["Content-Disposition"])
    book = load_workbook(io.BytesIO(response.data))
    coverage = book["覆盖情况"]
    rows = [[cell.value for cell in row] for row in coverage.iter_rows(min_row=3)]
    header, data = rows[0], rows[1:]
    total = dict(zip(header, data[0]))
    assert total["层级"] == "合计" and total["名称"] == "梧州市"
    assert total["摊位数"] == body["region"]["totals"]["stalls"]
    assert total["党员经营户"] == body["region"]["totals"]["party_households"]
    markets = [dict(zip(header, row)) for row in data if row[0] == "市场"]
    assert sorted(m["名称"] for m in markets) == sorted(m["name"] for m in body["markets"])
    assert sum(m["摊位数"] for m in markets) == total["摊位数"]
    assert "党建" in book.sheetnames
    assert client.get("/api/v1/stats/overview.xlsx?region=430281", headers=reg.headers).status_code in (403, 404)


def test_set_based_rebuild_gives_what_the_writers_gave(client, auth, tree, make_market, clock, db):
    """PostgreSQL rebuilds in a few INSERT … SELECTs (issue 14: a province in minutes); on the
    hand-built tree, with a pledge not yet begun, a market at a province's own level, a rider
    station and organisations in three counties, it stores what the writers stored: a count from
    nothing agrees, and every overview reads the same before and after."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the set-based rebuild is PostgreSQL's; SQLite rebuilds through the writers' code")
    from app.orgs.models import Membership, PartyOrg, StationRider
    from app.stats import rollups

    markets, _, _ = tree
    direct = make_market(name="自治区直属市场", region_code="450000")
    owner = find_or_create_user("owner-later")
    db.session.commit()
    merchant = make_merchant(owner.id, name="经营户晚签")
    make_stall(direct, "P-1", merchant)
    template = db.session.scalar(select(Pledge.template_id).limit(1))
    for market, days in ((direct, 10), (markets["M3"], 20)):  # not yet begun: no pledge in force, a change due
        db.session.add(Pledge(merchant_id=merchant.id, market_id=market.id, template_id=template, template_version=1,
                              title="承诺", items=[], term_months=12, signer_name="签署人", signed_by_id=owner.id,
                              status="approved", valid_from=NOW + days * DAY, valid_until=NOW + 400 * DAY))
    station = PartyOrg(name="长洲区骑手站支部", kind="joint_branch", sector="rider", region_code="450405")
    committee = PartyOrg(name="自治区市场党委", kind="committee", sector="market", region_code="450000")
    general = PartyOrg(name="醴陵总支", kind="general_branch", sector="market", region_code="430281")
    db.session.add_all([station, committee, general])
    db.session.flush()
    db.session.add(Membership(org_id=committee.id, user_id=owner.id, standing="formal", floating=True,
                              status="verified"))
    db.session.add_all([StationRider(org_id=station.id, user_id=find_or_create_user(f"rider-{i}").id)
                        for i in range(3)])
    db.session.commit()

    admin = auth.login("ops", role="admin")
    urls = [f"/api/v1/stats/overview?region={code}&per_page=100"
            for code in ("000000", "450000", "450400", "450403", "450405", "430000", "430281")]

    def read():
        return [{key: value for key, value in client.get(url, headers=admin.headers).get_json().items()
                 if key != "generated_at"} for url in urls]

    before = read()
    assert rollups.differences(db.session()) == []
    counted = rollups.rebuild(db.session())
    db.session.commit()
    assert counted["markets"] == 6 and counted["orgs"] == 4
    assert rollups.differences(db.session()) == []
    assert read() == before
    clock.set(NOW + 15 * DAY)  # the first pledge begins: the stored changes_at brings it in
    assert rollups.differences(db.session()) == []
    later = read()
    rollups.rebuild(db.session())
    db.session.commit()
    assert read() == later and later[1]["direct"]["merchants_with_pledge_in_force"] == 1
