"""Categories as data with points per region, the figures (counts by category, region, month
and status, time to close) and the grid heat map that never shows a single report."""
from datetime import timedelta

from tests.conftest import at, error_code
from tests.reports.conftest import LAT, LNG


def test_categories_are_public_and_their_points_set_per_region(desk, client, auth, db, clock):
    clock.set(at("2026-03-02 10:00"))
    listed = client.get("/api/v1/report-categories").get_json()
    assert [c["label"] for c in listed] == ["后厨卫生", "过期变质食品", "无证经营", "价格欺诈", "缺斤短两", "其他"]
    county = desk.regulator()
    changed = client.patch("/api/v1/report-categories/kitchen_hygiene", json={"points": 12, "region": "450403"},
                           headers=county.headers)
    assert changed.status_code == 200 and changed.get_json()["region"] == "450403"
    local = {c["code"]: c["points"] for c in client.get("/api/v1/report-categories?region=450403").get_json()}
    national = {c["code"]: c["points"] for c in client.get("/api/v1/report-categories").get_json()}
    assert local["kitchen_hygiene"] == 12 and national["kitchen_hygiene"] == 10
    # a county regulator cannot change every region's amount, nor another region's
    refused = client.patch("/api/v1/report-categories/kitchen_hygiene", json={"points": 1}, headers=county.headers)
    assert refused.status_code == 422 and error_code(refused) == "REPORT_CATEGORY_POINTS_REGION"
    far = desk.regulator("far-away", "430281")
    other = client.patch("/api/v1/report-categories/kitchen_hygiene", json={"points": 1, "region": "450403"},
                         headers=far.headers)
    assert other.status_code == 403 and error_code(other) == "OUT_OF_SCOPE"
    admin = auth.login("admin-1", role="admin")
    assert client.patch("/api/v1/report-categories/other", json={"active": False, "label": "其他问题"},
                        headers=admin.headers).status_code == 200
    assert "other" not in {c["code"] for c in client.get("/api/v1/report-categories").get_json()}
    missing = client.patch("/api/v1/report-categories/nope", json={"points": 1}, headers=admin.headers)
    assert missing.status_code == 404 and error_code(missing) == "REPORT_CATEGORY_UNKNOWN"

    # an upheld report in 万秀区 earns the county's amount
    rider = desk.rider()
    report = desk.file(rider).get_json()
    desk.act(county, report["id"], "accept")
    desk.act(county, report["id"], "decide", decision="upheld")
    assert client.get("/api/v1/me/points", headers=rider.headers).get_json()["balance"] == 12
    assert error_code(desk.file(rider, expect=422, category="other")) == "REPORT_CATEGORY_NOT_FOUND"


def test_figures_and_heat_map(desk, client, db, clock):
    from app.reports.queries import report_figures

    clock.set(at("2026-02-27 10:00"))
    rider, county = desk.rider(), desk.regulator()
    february = desk.file(rider, category="price_fraud").get_json()["id"]
    clock.set(at("2026-03-02 10:00"))
    march = [desk.file(rider, description=f"问题 {i}").get_json()["id"] for i in range(2)]
    far = desk.file(rider, lat="23.5012", lng="111.3388").get_json()["id"]  # another cell
    for report_id in (february, march[0]):
        desk.act(county, report_id, "accept")
        clock.advance(timedelta(hours=1))
    desk.act(county, february, "decide", decision="unfounded", note="未发现")
    desk.act(county, march[0], "decide", decision="upheld")
    desk.act(county, march[1], "accept")

    figures = client.get("/api/v1/reports/stats", headers=county.headers).get_json()
    assert figures["region"] == {"code": "450403", "name": "万秀区"}
    assert figures["total"] == 4 and figures["closed"] == 2 and figures["upheld_rate"] == 0.5
    assert figures["by_status"] == {"open": 1, "accepted": 1, "upheld": 1, "unfounded": 1, "rectified": 0}
    assert {c["code"]: c["count"] for c in figures["by_category"]} == {"kitchen_hygiene": 3, "price_fraud": 1}
    assert figures["by_month"] == [{"month": "2026-02", "count": 1}, {"month": "2026-03", "count": 3}]
    assert figures["by_region"] == [{"code": "450403", "count": 4}]
    # filed 2026-02-27 10:00, decided 2026-03-02 12:00: 74 h; filed 03-02 10:00, decided 12:00: 2 h
    assert figures["close_hours_avg"] == 38.0 and figures["close_hours_median"] == 38.0
    assert report_figures("450000", clock.now())["total"] == 4 and report_figures("430281")["total"] == 0

    heat = client.get("/api/v1/reports/heatmap", headers=county.headers).get_json()
    assert heat["cells"] == [{"lat": 23.475, "lng": 111.275, "count": 3}]
    assert heat["suppressed"] == 1 and heat["min_count"] == 3 and far
    text = str(heat)
    assert str(LAT)[:7] not in text and str(LNG)[:8] not in text

    other = desk.regulator("far-away", "430281")
    refused = client.get("/api/v1/reports/stats?region=450403", headers=other.headers)
    assert refused.status_code == 403 and error_code(refused) == "OUT_OF_SCOPE"
    assert client.get("/api/v1/reports/stats", headers=other.headers).get_json()["total"] == 0
