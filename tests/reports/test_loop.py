"""骑手随手拍 end to end over HTTP: a report on a stall goes to its market, is accepted, found
属实, the rider is told and earns points, the stall's badge counts it until the rectification,
then clears; a 不属实 report earns nothing; the daily cap; idempotent retries."""
from sqlalchemy import func, select

from tests.conftest import at, error_code
from tests.reports.conftest import LAT, LNG, inbox


def _points(client, login) -> int:
    response = client.get("/api/v1/me/points", headers=login.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["balance"]


def test_report_on_a_stall_route_accept_uphold_notice_points_badge_rectified(desk, shop, client, db, clock):
    from app.core.audit import AuditEntry

    clock.set(at("2026-03-02 10:00"))  # a Monday
    market, manager, token, merchant, _ = shop.trusted_stall(pledge=True)
    assert desk.badge(token)["verdict"] == "放心摊位"
    rider = desk.rider()

    filed = desk.file(rider, stall_token=token, photos=None).get_json()
    assert filed["status"] == "open" and filed["place"]["kind"] == "stall"
    assert filed["place"]["stall_number"] == "A-01" and filed["place"]["stall_token"] is None
    assert filed["place"]["shop_name"] is None  # a sticker decides the place
    assert "location" not in filed and "reporter" not in filed
    assert filed["accept_due_at"].startswith("2026-03-03T10:00") and filed["close_due_at"].startswith("2026-03-09T10:00")

    # Routed to the market's managers: first in their queue, with the rider masked.
    queue = client.get("/api/v1/reports", headers=manager.headers).get_json()
    assert [item["id"] for item in queue["items"]] == [filed["id"]]
    item = queue["items"][0]
    assert item["reporter"] == {"name": "王*军", "phone": "138****5678"}
    assert item["location"] == {"lat": LAT, "lng": LNG, "precision": "exact"}
    assert item["market_id"] == market.id and item["overdue"] is False
    assert [n.kind for n in inbox(db, manager.user_id)] == ["report_new"]
    # The market's county regulators see it; the merchant learns nothing of it.
    regulator = desk.regulator()
    assert client.get("/api/v1/reports", headers=regulator.headers).get_json()["total"] == 1
    assert client.get(f"/api/v1/reports/{filed['id']}", headers=merchant.headers).status_code == 404

    desk.act(manager, filed["id"], "accept")
    clock.set(at("2026-03-03 09:00"))
    decided = desk.act(manager, filed["id"], "decide", decision="upheld", note="现场检查属实，已责令整改")
    assert decided["status"] == "upheld"
    assert decided["location"]["precision"] == "cell" and decided["location"]["lat"] == 23.475

    progress = inbox(db, rider.user_id, "report_progress")
    assert [n.title for n in progress] == ["您的随手拍已受理", "您的随手拍经核实属实"]
    assert "10 积分" in progress[1].body and "现场检查属实" in progress[1].body
    assert all(n.template_key == "review_result" for n in progress)
    assert _points(client, rider) == 10

    badge = desk.badge(token)
    assert badge["verdict"] == "近期有经核实的投诉" and badge["complaints"]["upheld_90d"] == 1
    # Still counted past the 90 days a consumer complaint lasts, while it is not rectified.
    clock.set(at("2026-06-10 09:00"))
    assert desk.badge(token)["complaints"]["upheld_90d"] == 1

    rectified = desk.rectify(manager, filed["id"])
    assert rectified["status"] == "rectified"
    badge = desk.badge(token)
    assert badge["complaints"]["upheld_90d"] == 0 and badge["verdict"] != "近期有经核实的投诉"
    assert inbox(db, rider.user_id, "report_progress")[-1].title == "您反映的问题已整改"

    mine = client.get(f"/api/v1/reports/{filed['id']}", headers=rider.headers).get_json()
    assert [step["action"] for step in mine["history"]] == ["submitted", "accepted", "upheld", "rectified"]
    assert mine["points_awarded"] == 10 and "reporter" not in mine and "location" not in mine
    actions = set(db.session.scalars(select(AuditEntry.action).where(AuditEntry.target_type == "report")))
    assert actions == {"report.submit", "report.accept", "report.upheld", "report.rectified"}


def test_a_report_judged_unfounded_earns_nothing_and_needs_a_reason(desk, client, db, clock):
    clock.set(at("2026-03-02 10:00"))
    rider, regulator = desk.rider(), desk.regulator()
    report = desk.file(rider).get_json()
    assert desk.act(regulator, report["id"], "decide", expect=409, decision="upheld")  # not accepted yet
    desk.act(regulator, report["id"], "accept")
    refused = client.post(f"/api/v1/reports/{report['id']}/decide", json={"decision": "unfounded"},
                          headers=regulator.headers)
    assert refused.status_code == 422 and error_code(refused) == "REASON_REQUIRED"
    decided = desk.act(regulator, report["id"], "decide", decision="unfounded", note="现场未发现所述情况")
    assert decided["status"] == "unfounded"
    assert _points(client, rider) == 0
    assert inbox(db, rider.user_id, "report_progress")[-1].body.endswith("原因：现场未发现所述情况")
    again = client.post(f"/api/v1/reports/{report['id']}/decide", json={"decision": "upheld"}, headers=regulator.headers)
    assert again.status_code == 409 and error_code(again) == "REPORT_ALREADY_DECIDED"
    assert _points(client, rider) == 0


def test_points_are_capped_per_rider_and_filing_day(desk, client, app, db, clock, monkeypatch):
    from app.reports.models import ReportAward

    monkeypatch.setitem(app.config, "REPORTS_POINTS_DAILY_CAP", 15)
    clock.set(at("2026-03-02 10:00"))
    rider, regulator = desk.rider(), desk.regulator()
    same_day = [desk.file(rider, description=f"后厨问题 {i}").get_json()["id"] for i in range(3)]
    clock.set(at("2026-03-03 10:00"))
    next_day = desk.file(rider, description="后厨问题 4").get_json()["id"]
    for report_id in (*same_day, next_day):
        desk.act(regulator, report_id, "accept")
        desk.act(regulator, report_id, "decide", decision="upheld")
    awards = {a.report_id: a.points for a in db.session.scalars(select(ReportAward))}
    assert [awards[r] for r in same_day] == [10, 5, 0] and awards[next_day] == 10
    assert _points(client, rider) == 25
    assert "已达上限" in inbox(db, rider.user_id, "report_progress")[-3].body


def test_a_retried_report_with_the_same_key_is_filed_once(desk, client, db, clock):
    from app.reports.models import Report

    clock.set(at("2026-03-02 10:00"))
    rider = desk.rider()
    first = desk.file(rider, headers={"Idempotency-Key": "report-1"})
    second = desk.file(rider, headers={"Idempotency-Key": "report-1"})
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert second.get_json() == first.get_json()
    assert db.session.scalar(select(func.count()).select_from(Report)) == 1
    other = desk.file(rider, expect=422, headers={"Idempotency-Key": "report-1"}, description="别的内容")
    assert error_code(other) == "IDEMPOTENCY_KEY_REUSED"


def test_free_form_reports_go_to_the_county_of_the_riders_station_and_can_be_transferred(desk, client, db, auth,
                                                                                         clock):
    clock.set(at("2026-03-02 10:00"))
    rider = desk.rider()
    county, city = desk.regulator(), desk.regulator("city-regulator", "450400")
    elsewhere = desk.regulator("other-county", "450405")
    report = desk.file(rider).get_json()
    assert report["region_code"] == "450403" and report["place"]["kind"] == "shop"
    # The county's own regulators are told; the city's oversee it in their queue.
    assert [n.kind for n in inbox(db, county.user_id)] == ["report_new"] and inbox(db, city.user_id) == []
    assert client.get("/api/v1/reports", headers=city.headers).get_json()["total"] == 1
    assert client.get("/api/v1/reports", headers=elsewhere.headers).get_json()["total"] == 0

    moved = desk.act(county, report["id"], "transfer", region="450405", note="店铺在长洲区")
    assert moved["region_code"] == "450405" and moved["status"] == "open"
    assert [n.kind for n in inbox(db, elsewhere.user_id)] == ["report_new"]
    assert client.get(f"/api/v1/reports/{report['id']}", headers=county.headers).status_code == 404
    desk.act(elsewhere, report["id"], "accept")
    assert inbox(db, rider.user_id, "report_progress")[0].title == "您的随手拍已转办"
    history = client.get(f"/api/v1/reports/{report['id']}", headers=rider.headers).get_json()["history"]
    assert [(h["action"], h["region_code"]) for h in history] == [
        ("submitted", None), ("transferred", "450405"), ("accepted", None)]


def test_a_rider_sees_their_own_reports_and_photos_nobody_else_does(desk, shop, client, clock):
    clock.set(at("2026-03-02 10:00"))
    rider, other = desk.rider(), desk.rider("rider-2", phone=None, name=None)
    report = desk.file(rider).get_json()
    assert client.get("/api/v1/reports", headers=rider.headers).get_json()["total"] == 1
    assert client.get("/api/v1/reports", headers=other.headers).get_json()["total"] == 0
    assert client.get(f"/api/v1/reports/{report['id']}", headers=other.headers).status_code == 404
    photo = report["photo_urls"][0]
    assert client.get(photo, headers=rider.headers).status_code == 200
    assert client.get(photo, headers=desk.regulator().headers).status_code == 200
    assert client.get(photo, headers=other.headers).status_code == 404
    stranger = desk.regulator("far-away", "430281")
    assert client.get(photo, headers=stranger.headers).status_code == 404
