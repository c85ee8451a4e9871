"""Issue 14 item 2: the overview reads roll-ups kept in step with the facts. A world built here by
hand, changed through the API one kind of change at a time (claim, credential, pledge,
membership, time passing over a permit, a licence and a pledge, release); after each, the
overview says exactly what the hand-kept figures say, and a count from nothing agrees with
what is stored."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.extensions import db as _db
from app.stats import rollups
from app.stats.models import MarketCoverage
from tests.conftest import at, error_code
from tests.orgs.factories import create_org

FIELDS = ("markets", "stalls", "stalls_claimed", "merchants", "licences_shown", "permits_shown",
          "pledges_in_force", "pledges_expired", "merchants_with_pledge_in_force", "party_households")


class Figures:
    """The hand-kept figures: per market, and for the city (distinct entities counted once)."""

    def __init__(self):
        self.markets = {"M1": dict.fromkeys(FIELDS, 0), "M2": dict.fromkeys(FIELDS, 0)}
        for row in self.markets.values():
            row["markets"] = 1

    def set(self, market, **values):
        self.markets[market].update(values)

    def city(self, merchants, with_pledge):
        totals = {name: sum(row[name] for row in self.markets.values()) for name in FIELDS}
        totals.update(merchants=merchants, merchants_with_pledge_in_force=with_pledge)
        return totals


def _picked(totals):
    return {name: totals[name] for name in FIELDS}


@pytest.fixture
def world(shop, auth, client, clock):
    clock.set(at("2026-06-01 12:00"))
    m1 = shop.market("万秀东中农贸市场", "450403")
    m2 = shop.market("长洲综合市场", "450405")
    managers = {"M1": shop.manager(m1, "manager-1"), "M2": shop.manager(m2, "manager-2")}
    stalls = {"M1": shop.stalls(m1, managers["M1"], ["A-01", "A-02", "A-03"]),
              "M2": shop.stalls(m2, managers["M2"], ["B-01"])}
    regulator = auth.login("reg-wuzhou", role="regulator", scope="region:450400")
    return {"markets": {"M1": m1, "M2": m2}, "managers": managers, "stalls": stalls, "regulator": regulator}


def assert_overview(client, world, figures, merchants, with_pledge):
    body = client.get("/api/v1/stats/overview", headers=world["regulator"].headers).get_json()
    assert _picked(body["region"]["totals"]) == figures.city(merchants, with_pledge)
    rows = {row["id"]: _picked(row["totals"]) for row in body["markets"]}
    for key, market in world["markets"].items():
        assert rows[market.id] == figures.markets[key], key
    children = {child["code"]: _picked(child["totals"]) for child in body["children"]}
    assert children["450403"]["stalls_claimed"] == figures.markets["M1"]["stalls_claimed"]
    assert children["450405"]["licences_shown"] == figures.markets["M2"]["licences_shown"]
    assert rollups.differences(_db.session()) == []


def test_figures_follow_every_kind_of_change(client, shop, world, clock):
    figures = Figures()
    figures.set("M1", stalls=3)
    figures.set("M2", stalls=1)
    assert_overview(client, world, figures, 0, 0)
    a01, b01 = world["stalls"]["M1"][0]["token"], world["stalls"]["M2"][0]["token"]

    # A claim counts once the manager confirms it; one entity in two markets is one household.
    login, merchant_id = shop.merchant()
    shop.claim(login, merchant_id, a01)
    assert_overview(client, world, figures, 0, 0)
    shop.review_claim(world["managers"]["M1"], a01)
    shop.claim(login, merchant_id, b01)
    shop.review_claim(world["managers"]["M2"], b01)
    figures.set("M1", stalls_claimed=1, merchants=1)
    figures.set("M2", stalls_claimed=1, merchants=1)
    assert_overview(client, world, figures, 1, 0)

    # Credentials verified: the licence and the permit show on both of the entity's stalls.
    licence = shop.credential(login, merchant_id, valid_until="2026-06-30")
    permit = shop.credential(login, merchant_id, kind="food_business", number="JY14504030012345",
                             valid_until="2026-06-10")
    shop.verify(world["managers"]["M1"], licence)
    shop.verify(world["managers"]["M1"], permit)
    for key in ("M1", "M2"):
        figures.set(key, licences_shown=1, permits_shown=1)
    assert_overview(client, world, figures, 1, 0)

    # A pledge approved in 东中 market.
    shop.approved_pledge(login, merchant_id, world["managers"]["M1"], world["markets"]["M1"].id)
    figures.set("M1", pledges_in_force=1)
    figures.markets["M1"]["merchants_with_pledge_in_force"] = 1
    assert_overview(client, world, figures, 1, 1)

    # The operator verified as a party member: both stalls are 党员经营户.
    org = create_org()
    claim = client.post(f"/api/v1/orgs/{org.id}/memberships", json={"standing": "formal"}, headers=login.headers)
    secretary = shop.auth.login("sec-1", role="branch_secretary", scope=f"org:{org.id}")
    reviewed = client.post(f"/api/v1/memberships/{claim.get_json()['id']}/review", json={"decision": "approve"},
                           headers=secretary.headers)
    assert reviewed.status_code == 200, reviewed.get_json()
    for key in ("M1", "M2"):
        figures.set(key, party_households=1)
    assert_overview(client, world, figures, 1, 1)

    # Time alone: the permit ends with 10 June (local), the licence with 30 June; the overview is
    # exact before the refresh series stores anything, and after it.
    clock.set(at("2026-06-11 00:00"))
    for key in ("M1", "M2"):
        figures.set(key, permits_shown=0)
    assert_overview(client, world, figures, 1, 1)
    clock.set(at("2026-07-01 00:00"))
    for key in ("M1", "M2"):
        figures.set(key, licences_shown=0)
    assert_overview(client, world, figures, 1, 1)
    stored = rollups.refresh_due(_db.session(), clock.now())
    assert stored["markets"] == 2
    assert _db.session.get(MarketCoverage, world["markets"]["M1"].id).licences_shown == 0
    assert_overview(client, world, figures, 1, 1)

    # The pledge lapses at the end of its term.
    clock.set(at("2027-06-02 00:00"))
    figures.set("M1", pledges_in_force=0, pledges_expired=1, merchants_with_pledge_in_force=0)
    assert_overview(client, world, figures, 1, 0)

    # Releases: the entity still holds 长洲's stall after leaving 东中, then none.
    released = client.post(f"/api/v1/stalls/{a01}/release", json={"reason": "合同到期退租"}, headers=login.headers)
    assert released.status_code == 200, released.get_json()
    figures.set("M1", stalls_claimed=0, merchants=0, party_households=0)
    assert_overview(client, world, figures, 1, 0)
    client.post(f"/api/v1/stalls/{b01}/release", json={"reason": "合同到期退租"}, headers=login.headers)
    figures.set("M2", stalls_claimed=0, merchants=0, party_households=0)
    assert_overview(client, world, figures, 0, 0)


def test_market_rows_are_paged_and_totals_cover_all_of_them(client, shop, auth, world):
    for n in range(5):
        shop.market(f"梧州第{n}市场", "450403")
    regulator = world["regulator"]
    first = client.get("/api/v1/stats/overview?per_page=3", headers=regulator.headers).get_json()
    second = client.get("/api/v1/stats/overview?per_page=3&page=3", headers=regulator.headers).get_json()
    assert first["markets_page"] == {"page": 1, "per_page": 3, "total": 7}
    assert len(first["markets"]) == 3 and len(second["markets"]) == 1
    assert first["region"]["totals"]["markets"] == 7
    assert first["region"]["totals"]["stalls"] == 4
    assert first["sections"]["rider_reports"]["by_status"]["open"] == 0  # the 随手拍 figures ride along
    too_many = client.get("/api/v1/stats/overview?per_page=100000", headers=regulator.headers)
    assert too_many.status_code == 422 and error_code(too_many) == "VALIDATION_ERROR"


def test_rebuild_counts_the_same_as_the_writers_did(client, shop, world):
    login, merchant_id = shop.merchant()
    token = world["stalls"]["M1"][1]["token"]
    shop.claim(login, merchant_id, token)
    shop.review_claim(world["managers"]["M1"], token)
    before = client.get("/api/v1/stats/overview", headers=world["regulator"].headers).get_json()["region"]
    rollups.rebuild(_db.session())
    _db.session.commit()
    after = client.get("/api/v1/stats/overview", headers=world["regulator"].headers).get_json()["region"]
    assert after == before and after["totals"]["stalls_claimed"] == 1
    assert rollups.differences(_db.session()) == []


def test_missing_rollups_are_a_clear_error_and_the_command_builds_them(app, client, world):
    from app.stats.models import MerchantScope, RegionCoverage

    for model in (MerchantScope, MarketCoverage, RegionCoverage):
        _db.session.execute(model.__table__.delete())
    _db.session.commit()
    response = client.get("/api/v1/stats/overview", headers=world["regulator"].headers)
    assert response.status_code == 503 and error_code(response) == "STATS_ROLLUPS_MISSING"
    assert "flask --app wsgi stats rollups rebuild" in response.get_json()["error"]["message"]

    runner = app.test_cli_runner()
    checked = runner.invoke(args=["stats", "rollups", "check"])
    assert checked.exit_code != 0 and "不一致" in checked.output
    built = runner.invoke(args=["stats", "rollups", "rebuild", "--if-missing"])
    assert built.exit_code == 0, built.output
    assert runner.invoke(args=["stats", "rollups", "rebuild", "--if-missing"]).output.startswith("统计汇总已建立")
    assert runner.invoke(args=["stats", "rollups", "check"]).exit_code == 0
    body = client.get("/api/v1/stats/overview", headers=world["regulator"].headers).get_json()
    assert body["region"]["totals"]["stalls"] == 4


def _uscc(n: int) -> str:
    from app.markets.uscc import check_character

    first17 = f"92450403MA5L{n:05d}"
    return first17 + check_character(first17)


def test_parallel_claims_in_one_market_leave_exact_figures(app, client, shop, world):
    """Writers in parallel (PostgreSQL): each recounts under the market's lock at commit, so the
    last to commit counts everyone's claim."""
    if _db.engine.dialect.name != "postgresql":
        pytest.skip("并发写入需要 PostgreSQL（CI 中运行）")
    m1 = world["markets"]["M1"]
    market_id = m1.id
    tokens = [stall["token"] for stall in shop.stalls(m1, world["managers"]["M1"],
                                                      [f"P-{n:02d}" for n in range(12)])]
    merchants = [shop.merchant(f"merchant-{n}", uscc=_uscc(n), name=f"经营户{n}") for n in range(len(tokens))]
    errors = []

    def claim_and_approve(token, login, merchant_id):
        with app.test_client() as own:
            try:
                own.post(f"/api/v1/stalls/{token}/claim", json={"merchant_id": merchant_id}, headers=login.headers)
                response = own.post(f"/api/v1/stalls/{token}/claim/review", json={"decision": "approve"},
                                    headers=world["managers"]["M1"].headers)
                assert response.status_code == 200, response.get_json()
            except BaseException as error:  # noqa: BLE001 (reported below)
                errors.append(error)

    threads = [threading.Thread(target=claim_and_approve, args=(token, *merchant))
               for token, merchant in zip(tokens, merchants)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    _db.session.remove()
    row = _db.session.scalar(select(MarketCoverage).where(MarketCoverage.market_id == market_id))
    assert row.stalls_claimed == len(tokens) and row.merchants == len(tokens)
    assert rollups.differences(_db.session()) == []


def test_a_large_region_exports_its_table_as_a_job(thread_jobs, client, auth, world, monkeypatch):
    from app.stats import jobs as stats_jobs
    from tests.conftest import xlsx_table
    from tests.jobs.test_jobs import wait_for

    regulator = world["regulator"]
    monkeypatch.setattr(stats_jobs, "DIRECT_EXPORT_MAX_MARKETS", 1)  # two markets: "large" here
    direct = client.get("/api/v1/stats/overview.xlsx", headers=regulator.headers)
    assert direct.status_code == 409 and error_code(direct) == "STATS_EXPORT_USE_JOB"
    assert direct.get_json()["error"]["details"]["job_endpoint"] == "/api/v1/stats/overview-exports"

    submitted = client.post("/api/v1/stats/overview-exports", headers=regulator.headers)
    assert submitted.status_code == 202, submitted.get_json()
    job = wait_for(client, regulator.headers, submitted.get_json()["id"])
    assert job["status"] == "succeeded", job
    download = client.get(f"/api/v1/jobs/{job['id']}/result", headers=regulator.headers)
    assert download.status_code == 200
    _, _, rows, _ = xlsx_table(download.data)
    names = [row[2] for row in rows if row and row[0] == "市场"]
    assert sorted(names) == sorted(market.name for market in world["markets"].values())

    other = auth.login("reg-other", role="regulator", scope="region:430000")
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=other.headers).status_code in (403, 404)
    outside = client.post("/api/v1/stats/overview-exports?region=450400", headers=other.headers)
    assert outside.status_code == 403 and error_code(outside) == "OUT_OF_SCOPE"
