"""Issue 16 part A item 4, the 首页's 骑手随手拍 panel: a regulator's dashboard shows the reports of
the region it shows (counts by status with the API's labels, by category, by month and child
region, overdue, upheld rate, average and median hours to close) and, at city and county level,
a grid heat map drawn from the aggregated cells only: a cell of fewer than 3 reports is never
drawn nor listed, only counted. The numbers are checked against reports filed and handled
through the API; in Chromium the charts and the heat map's cells have drawn; a county's
regulator sees nothing of the neighbouring county. Screenshots at 1280×800 and 390×844."""
from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace

import pytest

from tests.conftest import at
from tests.console.conftest import PHONE
from tests.console.test_dashboard import _chart_data, _html, _kpi
from tests.reports.conftest import LAT, LNG, Desk

# Three cells of 万秀区 (0.01°, centres as the API gives them) and one of 长洲区.
CELL_A = {"lat": 23.475, "lng": 111.275}  # LAT, LNG: four reports
POINT_C, CELL_C = ("23.4862", "111.2968"), {"lat": 23.485, "lng": 111.295}  # three reports
POINT_B, CELL_B = ("23.5012", "111.3388"), {"lat": 23.505, "lng": 111.335}  # one report: never drawn
POINT_D, CELL_D = ("23.4562", "111.2268"), {"lat": 23.455, "lng": 111.225}  # 长洲区: three reports


@pytest.fixture
def reports_world(client, auth, db, regions, clock):
    """万秀区 (450403), filed by a rider of its station and handled by its regulator:

    r1  2026-02-27 10:00  价格欺诈   cell A  不属实 2026-03-02 12:00 (74 h)
    r2  2026-03-02 10:00  后厨卫生   cell A  属实 12:00 (2 h), then 已整改
    r3                    后厨卫生   cell A  已受理
    r4                    后厨卫生   cell A  待受理
    c1                    无证经营   cell C  属实 16:00 (6 h)
    c2                    无证经营   cell C  待受理
    c3                    缺斤短两   cell C  待受理
    b1                    过期变质食品 cell B 待受理 (alone in its cell)

    and 长洲区 (450405): three 其他 reports in cell D by a rider of its station, left open.
    The clock then stands at 2026-03-04 10:00: the four 万秀 reports still 待受理 are past
    their one working day (overdue); r3, accepted, has until 03-09."""
    from app.reports.services import install_default_categories
    from tests.orgs.factories import create_org

    install_default_categories()
    db.session.commit()
    wanxiu_station = create_org(name="万秀区快递外卖骑手党支部", sector="rider", station="万秀区美团站", platform="美团")
    changzhou_station = create_org(name="长洲区快递外卖骑手党支部", sector="rider", station="长洲区饿了么站",
                                   platform="饿了么", region_code="450405")
    desk = Desk(client, auth, None, wanxiu_station)
    rider, county = desk.rider(), desk.regulator("reg-wanxiu-api", "450403")

    clock.set(at("2026-02-27 10:00"))
    r1 = desk.file(rider, category="price_fraud").get_json()["id"]
    clock.set(at("2026-03-02 10:00"))
    r2, r3, _r4 = (desk.file(rider, description=f"后厨问题 {i}").get_json()["id"] for i in range(3))
    c1 = desk.file(rider, category="unlicensed", lat=POINT_C[0], lng=POINT_C[1]).get_json()["id"]
    desk.file(rider, category="unlicensed", lat=POINT_C[0], lng=POINT_C[1])
    desk.file(rider, category="short_weight", lat=POINT_C[0], lng=POINT_C[1])
    desk.file(rider, category="expired_food", lat=POINT_B[0], lng=POINT_B[1])

    clock.set(at("2026-03-02 11:00"))
    for report in (r1, r2, c1):
        desk.act(county, report, "accept")
    clock.set(at("2026-03-02 12:00"))
    desk.act(county, r1, "decide", decision="unfounded", note="现场未发现")
    desk.act(county, r2, "decide", decision="upheld")
    clock.set(at("2026-03-02 16:00"))
    desk.act(county, c1, "decide", decision="upheld")
    desk.act(county, r3, "accept")
    desk.rectify(county, r2)

    changzhou = Desk(client, auth, None, changzhou_station)
    cz_rider = changzhou.rider("rider-cz", phone="13912345678", name="李小明")
    for _ in range(3):
        changzhou.file(cz_rider, category="other", lat=POINT_D[0], lng=POINT_D[1])
    clock.set(at("2026-03-04 10:00"))
    db.session.commit()
    return SimpleNamespace(desk=desk, county=county)


def _statuses(html: str) -> dict[str, str]:
    found = re.findall(r'<li data-status="(\w+)"[^>]*>.*?<strong>([^<]*)</strong>', html, re.S)
    return dict(found)


def _table(html: str, testid: str) -> list[tuple[str, str]]:
    """(row heading, first cell) of each body row of a data table, tags stripped."""
    table = re.search(rf'data-testid="{testid}">(.*?)</table>', html, re.S)
    assert table, testid
    rows = re.findall(r"<tr><th scope=\"row\">(.*?)</th><td>(.*?)</td>", table.group(1).split("<tbody>")[1], re.S)
    return [(re.sub(r"<[^>]+>", "", head).strip(), cell.strip()) for head, cell in rows]


def _cell_text(cell: dict) -> str:
    return f"北纬 {cell['lat']:.3f}°，东经 {cell['lng']:.3f}°"


def test_a_county_regulator_sees_the_panel_numbers_of_the_reports(client, console, reports_world):
    console.login("reg-wanxiu", role="regulator", scope="region:450403")
    html = _html(client.get("/console/"))
    assert 'data-testid="reports-panel"' in html and "骑手随手拍" in html
    assert _kpi(html, "reports_total") == "8" and _kpi(html, "reports_closed") == "3"
    assert _kpi(html, "reports_overdue") == "4"
    assert re.search(r'class="kpi kpi-alert" data-kpi="reports_overdue"', html)  # it stands out
    assert _kpi(html, "reports_upheld_rate") == "66.7"  # 属实 r2 (since rectified) and c1 of 3 closed
    assert _kpi(html, "reports_hours_avg") == "27.3"  # (74 + 2 + 6) / 3
    assert _kpi(html, "reports_hours_median") == "6.0"
    assert _statuses(html) == {"open": "4", "accepted": "1", "upheld": "1", "unfounded": "1", "rectified": "1"}
    for label in ("待受理", "已受理", "属实", "不属实", "已整改"):  # the API's labels
        assert f'</span>{label}\n' in html, label

    assert _table(html, "report-categories-table") == [
        ("后厨卫生", "3"), ("无证经营", "2"), ("价格欺诈", "1"), ("缺斤短两", "1"), ("过期变质食品", "1")]
    months = dict(_table(html, "report-months-table"))
    assert len(months) == 12 and months["2026-02"] == "1" and months["2026-03"] == "7"
    assert sum(int(count) for count in months.values()) == 8
    data = _chart_data(html)["reports"]
    assert data["categories"] == {"labels": ["后厨卫生", "无证经营", "价格欺诈", "缺斤短两", "过期变质食品"],
                                  "values": [3, 2, 1, 1, 1]}
    assert data["months"]["labels"][-2:] == ["2026-02", "2026-03"] and data["months"]["values"][-2:] == [1, 7]

    # The heat map: the two cells of three or more, never the lone report's cell nor a point.
    assert data["heat"]["cells"] == [{"lat": 23.475, "lng": 111.275, "count": 4},
                                     {"lat": 23.485, "lng": 111.295, "count": 3}]
    assert _table(html, "report-heat-table") == [(_cell_text(CELL_A), "4"), (_cell_text(CELL_C), "3")]
    assert "格子内少于 3 件不显示（本地区有 1 件因此未显示）" in html
    assert "23.505" not in html and "111.335" not in html  # cell B: counted, not shown
    assert str(LAT)[:7] not in html and str(LNG)[:8] not in html and POINT_C[0] not in html
    assert "23.455" not in html and "111.225" not in html and "长洲" not in html  # 长洲区's cell
    assert 'href="/console/queues/reports"' in html
    assert "report-regions-table" not in html  # a county has no child regions to count

    # The same figures as the API's, for the same region.
    api = client.get("/api/v1/reports/stats", headers=reports_world.county.headers).get_json()
    assert (api["total"], api["overdue"], api["closed"]) == (8, 4, 3)
    assert (api["close_hours_avg"], api["close_hours_median"], api["upheld_rate"]) == (27.3, 6.0, 0.6667)


def test_a_city_regulator_sees_both_counties_counted_and_mapped(client, console, reports_world):
    console.login("reg-city", role="regulator", scope="region:450400")
    html = _html(client.get("/console/"))
    assert _kpi(html, "reports_total") == "11" and _kpi(html, "reports_overdue") == "7"
    assert _statuses(html)["open"] == "7"
    assert ("万秀区", "8") in _table(html, "report-regions-table")
    assert ("长洲区", "3") in _table(html, "report-regions-table")
    assert 'href="/console/?region=450405">长洲区</a>' in html
    cells = _chart_data(html)["reports"]["heat"]["cells"]
    assert [(cell["lat"], cell["lng"], cell["count"]) for cell in cells] == [
        (23.455, 111.225, 3), (23.475, 111.275, 4), (23.485, 111.295, 3)]
    assert "本地区有 1 件因此未显示" in html and "23.505" not in html


def test_the_neighbouring_county_sees_none_of_wanxiu(client, console, reports_world):
    console.login("reg-changzhou", role="regulator", scope="region:450405")
    html = _html(client.get("/console/"))
    assert "长洲区覆盖情况" in html
    assert _kpi(html, "reports_total") == "3" and _kpi(html, "reports_closed") == "0"
    assert _kpi(html, "reports_upheld_rate") == "—" and _kpi(html, "reports_hours_median") == "—"
    assert _statuses(html) == {"open": "3", "accepted": "0", "upheld": "0", "unfounded": "0", "rectified": "0"}
    assert _table(html, "report-categories-table") == [("其他", "3")]
    assert _chart_data(html)["reports"]["heat"]["cells"] == [{"lat": 23.455, "lng": 111.225, "count": 3}]
    assert "本地区有 0 件因此未显示" in html
    for wanxiu in ("后厨卫生", "无证经营", "23.475", "23.485", "111.275", "111.295", "万秀"):
        assert wanxiu not in html, wanxiu
    refused = client.get("/console/?region=450403")
    assert refused.status_code == 403
    assert "reports-panel" not in _html(refused) and "后厨卫生" not in _html(refused)


def test_above_the_city_the_heat_map_is_left_to_the_regions_below(client, console, reports_world):
    console.login("admin1", role="admin")
    html = _html(client.get("/console/"))
    assert _kpi(html, "reports_total") == "11" and ("广西壮族自治区", "11") in _table(html, "report-regions-table")
    assert _chart_data(html)["reports"]["heat"] is None and "report-heat-chart" not in html
    assert "网格分布在市、县（区）一级显示" in html and "23.475" not in html


def test_a_region_without_reports_says_so(client, console, reports_world):
    console.login("reg-liling", role="regulator", scope="region:430281")
    html = _html(client.get("/console/"))
    assert "本地区还没有骑手随手拍举报。" in html and 'data-testid="report-statuses"' not in html
    assert "report-categories-chart" not in html and "report-heat-chart" not in html
    assert _chart_data(html)["reports"]["heat"] is None


# -- in the browser ---------------------------------------------------------------------------------
HEAT_PIXELS = """selector => {  /* pixels of the heat map's reds (axes and grid lines are grey) */
    const canvas = document.querySelector(selector);
    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let red = 0;
    for (let i = 0; i < pixels.length; i += 4)
        if (pixels[i + 3] > 200 && pixels[i] >= 130 && pixels[i] - pixels[i + 1] >= 40) red++;
    return red;
}"""

PIXEL_AT = """([lat, lng]) => {  /* the colour drawn at a place, in the canvas's own pixels */
    const chart = window.consoleCharts.reportHeat, ratio = chart.currentDevicePixelRatio;
    const x = chart.scales.x.getPixelForValue(lng), y = chart.scales.y.getPixelForValue(lat);
    const area = chart.chartArea;
    const inside = x > area.left && x < area.right && y > area.top && y < area.bottom;
    const [r, g, b, a] = chart.ctx.getImageData(Math.round(x * ratio), Math.round(y * ratio), 1, 1).data;
    return {inside, r, g, b, a};
}"""


def _reddish(pixel: dict) -> bool:
    return pixel["a"] > 200 and pixel["r"] >= 130 and pixel["r"] - pixel["g"] >= 40


def test_the_heat_map_draws_its_cells_only(live_server, page, new_page, scan_login, shot, reports_world):
    from tests.console.test_dashboard import _canvas_has_drawn

    errors = []  # the scripts' errors and any resource the page fails to load (favicon.ico aside)
    page.on("response", lambda response: errors.append(response.url) if response.status >= 400 else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    scan_login(page, "reg-wanxiu", role="regulator", scope="region:450403")
    page.wait_for_selector("html[data-charts=drawn]")
    assert _canvas_has_drawn(page, "#report-categories-chart") > 1000
    assert _canvas_has_drawn(page, "#report-months-chart") > 500
    assert page.evaluate(HEAT_PIXELS, "#report-heat-chart") > 400  # two cells of about 1 km, in red
    assert _reddish(page.evaluate(PIXEL_AT, [CELL_A["lat"], CELL_A["lng"]]))
    assert _reddish(page.evaluate(PIXEL_AT, [CELL_C["lat"], CELL_C["lng"]]))
    lone = page.evaluate(PIXEL_AT, [CELL_B["lat"], CELL_B["lng"]])
    assert not (lone["inside"] and _reddish(lone)), "the lone report's cell is not drawn"
    drawn = page.evaluate("window.consoleCharts.reportHeat.data.datasets[0].data")
    assert drawn == [{"x": 111.275, "y": 23.475}, {"x": 111.295, "y": 23.485}]
    panel = page.locator("[data-testid=report-heat]").inner_text()
    assert "格子内少于 3 件不显示" in panel and "1 件因此未显示" in panel
    assert page.locator("[data-kpi=reports_overdue] .kpi-value").inner_text().startswith("4")

    heat = page.locator("#report-heat-chart")
    heat.scroll_into_view_if_needed()
    box = heat.bounding_box()
    x, y = page.evaluate("""() => {const c = window.consoleCharts.reportHeat;
        return [c.scales.x.getPixelForValue(111.275), c.scales.y.getPixelForValue(23.475)];}""")
    page.mouse.move(box["x"] + x, box["y"] + y)  # the cell's tooltip
    page.wait_for_function("window.consoleCharts.reportHeat.tooltip.opacity > 0")
    tooltip = page.evaluate("window.consoleCharts.reportHeat.tooltip.body.map(b => b.lines.join('')).join('')")
    assert tooltip == "北纬 23.475°，东经 111.275° 一带：4 件"
    page.mouse.move(0, 0)
    shot(page, "dashboard-reports-1280x800")
    assert not errors, errors

    phone = new_page(PHONE)
    scan_login(phone, "reg-wanxiu", role=None)
    phone.wait_for_selector("html[data-charts=drawn]")
    assert phone.evaluate(HEAT_PIXELS, "#report-heat-chart") > 200
    assert _canvas_has_drawn(phone, "#report-categories-chart") > 1000
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "nothing sticks out sideways"
    shot(phone, "dashboard-reports-390x844")


def test_another_countys_regulator_sees_none_of_it_in_the_browser(live_server, page, scan_login, reports_world):
    scan_login(page, "reg-changzhou", role="regulator", scope="region:450405")
    page.wait_for_selector("html[data-charts=drawn]")
    drawn = page.evaluate("window.consoleCharts.reportHeat.data.datasets[0].data")
    assert drawn == [{"x": 111.225, "y": 23.455}]
    assert not _reddish(page.evaluate(PIXEL_AT, [CELL_A["lat"], CELL_A["lng"]]))
    text = page.locator("main").inner_text()
    assert "后厨卫生" not in text and "万秀" not in text and "23.475" not in text
    assert page.locator("[data-kpi=reports_total] .kpi-value").inner_text().startswith("3")


def test_a_city_regulator_sees_both_counties_cells_drawn(live_server, page, scan_login, shot, reports_world):
    scan_login(page, "reg-city", role="regulator", scope="region:450400")
    page.wait_for_selector("html[data-charts=drawn]")
    for cell in (CELL_A, CELL_C, CELL_D):
        assert _reddish(page.evaluate(PIXEL_AT, [cell["lat"], cell["lng"]])), cell
    lone = page.evaluate(PIXEL_AT, [CELL_B["lat"], CELL_B["lng"]])
    assert not (lone["inside"] and _reddish(lone))
    regions = page.locator("[data-testid=report-regions-table]").inner_text()
    assert "万秀区\t8" in regions and "长洲区\t3" in regions
    shot(page, "dashboard-reports-city-1280x800")
