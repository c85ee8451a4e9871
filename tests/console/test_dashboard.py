"""Issue 15 item 2, 首页: the dashboard of the caller's scope through the stats services (the
overview's roll-ups, the trend), drill-down by region with a breadcrumb, a regulator kept to
their region (the service's Chinese refusal, not a 500), market managers' and branch
secretaries' own figures; in real Chromium the charts have drawn (pixels on the canvas) and a
click on a region's bar opens that region. Screenshots at 1280×800 and 390×844."""
from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest

from tests.console.conftest import PHONE, ConsoleActions

WANXIU_MARKET = "梧州市万秀区东中农贸市场"
CHANGZHOU_MARKET = "长洲区水果批发市场"


@pytest.fixture
def world(shop, regions, db):
    """万秀区 (450403): a market with a stall held by a merchant whose licence and permit are
    verified and whose pledge is approved (so every headline figure is non-zero); 长洲区
    (450405): a market of three unclaimed stalls, and an audit row of its own; 醴陵市
    (430281, another province): a market nobody of 梧州 may see."""
    from app.core import audit

    wanxiu, manager, token, login, merchant_id = shop.trusted_stall(until="2030-06-30", pledge=True)
    changzhou = shop.market(name=CHANGZHOU_MARKET, region_code="450405")
    changzhou_manager = shop.manager(changzhou, openid="manager-cz")
    shop.stalls(changzhou, changzhou_manager, ["C-01", "C-02", "C-03"])
    liling = shop.market(name="醴陵陶瓷市场", region_code="430281")
    audit.record("market.update", "market", changzhou.id, before={"name": "长洲旧名"}, after={"name": CHANGZHOU_MARKET},
                 reason="长洲区的改名", region_code="450405")
    db.session.commit()
    return SimpleNamespace(wanxiu=wanxiu, manager=manager, changzhou=changzhou, changzhou_manager=changzhou_manager,
                           liling=liling, merchant_login=login, merchant_id=merchant_id)


def _html(response) -> str:
    return response.get_data(as_text=True)


def _chart_data(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="dashboard-data">(.*?)</script>', html, re.S)
    assert found, "the page carries its chart data"
    return json.loads(found.group(1))


def _kpi(html: str, key: str) -> str:
    found = re.search(rf'data-kpi="{key}"[^>]*>\s*<span class="kpi-label">[^<]*</span>\s*'
                      rf'<span class="kpi-value">([^<]*)<small>', html)
    assert found, key
    return found.group(1)


def test_city_regulator_sees_the_city_and_drills_into_a_county(client, console, world):
    console.login("reg-city", role="regulator", scope="region:450400")
    home = client.get("/console/")
    assert home.status_code == 200
    html = _html(home)
    assert "梧州市覆盖情况" in html and "欢迎" in html and "市场监管人员" in html
    assert _kpi(html, "markets") == "2" and _kpi(html, "stalls") == "5" and _kpi(html, "stalls_claimed") == "1"
    assert _kpi(html, "licences_shown") == "1" and _kpi(html, "permits_shown") == "1"
    assert _kpi(html, "pledges_in_force") == "1" and _kpi(html, "pledge_rate") == "100.0"
    data = _chart_data(html)
    assert data["bars"]["labels"] == ["万秀区", "长洲区"]
    assert data["bars"]["links"] == ["/console/?region=450403", "/console/?region=450405"]
    stalls = next(series for series in data["bars"]["series"] if series["key"] == "stalls")
    assert stalls["values"] == [2, 3]
    assert len(data["trend"]["labels"]) == 12 and data["trend"]["series"][0]["values"][-1] == 1
    assert 'href="/console/?region=450403" data-region="450403"' in html  # the table's link too
    assert "醴陵" not in html

    county = _html(client.get("/console/?region=450403"))
    assert "万秀区覆盖情况" in county
    assert re.search(r'<a href="/console/\?region=450400">梧州市</a>', county)  # the way back up
    assert '<span aria-current="page">万秀区</span>' in county
    assert "广西壮族自治区</a>" not in county  # above the regulator's region: not a link
    bars = _chart_data(county)["bars"]
    assert bars["labels"] == [WANXIU_MARKET] and bars["links"] == [f"/console/markets/{world.wanxiu.id}"]
    assert CHANGZHOU_MARKET not in county


def test_a_county_regulator_never_sees_the_neighbouring_county(client, console, world):
    console.login("reg-wanxiu", role="regulator", scope="region:450403")
    html = _html(client.get("/console/"))
    assert "万秀区覆盖情况" in html and WANXIU_MARKET in html
    assert CHANGZHOU_MARKET not in html and "长洲" not in html
    assert _kpi(html, "markets") == "1"
    for outside in ("450405", "450400", "430281", "000000"):
        refused = client.get(f"/console/?region={outside}")
        assert refused.status_code == 403, outside
        page = _html(refused)
        assert "该对象不在您的管辖范围内" in page and 'data-testid="refusal"' in page
        assert "长洲" not in page and CHANGZHOU_MARKET not in page and "dashboard-data" not in page
    unknown = client.get("/console/?region=459999")
    assert unknown.status_code == 404 and "行政区划" in _html(unknown)


def test_admin_starts_at_the_country(client, console, world):
    console.login("admin1", role="admin")
    html = _html(client.get("/console/"))
    assert "全国覆盖情况" in html and _kpi(html, "markets") == "3"
    assert set(_chart_data(html)["bars"]["labels"]) >= {"广西壮族自治区", "湖南省"}


def test_a_regulator_of_two_regions_picks_one(client, console, auth, world):
    auth.grant("reg-two", "regulator", "region:450405")
    console.login("reg-two", role="regulator", scope="region:450403")
    html = _html(client.get("/console/"))
    assert "请选择要查看的地区" in html
    assert 'href="/console/?region=450403"' in html and 'href="/console/?region=450405"' in html
    assert "长洲区覆盖情况" in _html(client.get("/console/?region=450405"))


def test_market_manager_sees_their_market_only(client, console, world):
    console.login("manager-1", role=None)  # the manager of the 万秀 market (granted by the fixture)
    html = _html(client.get("/console/"))
    assert "我管理的市场" in html and WANXIU_MARKET in html and CHANGZHOU_MARKET not in html
    assert _kpi(html, "stalls") == "2" and _kpi(html, "stalls_claimed") == "1"
    assert _chart_data(html)["bars"]["labels"] == [WANXIU_MARKET]
    assert "覆盖情况" not in html  # the stats are the regulators' (as in the API)
    assert client.get("/console/?region=450403").status_code == 200  # no region view to drill into


def test_branch_secretary_sees_their_organisation(app, client, console, auth, world, db):
    from app.orgs.models import PartyOrg

    org = PartyOrg(name="万秀区东中市场党支部", kind="branch", sector="market", region_code="450403")
    db.session.add(org)
    db.session.commit()
    console.login("secretary", role="branch_secretary", scope=f"org:{org.id}")
    html = _html(client.get("/console/"))
    assert "我负责的党组织" in html and "万秀区东中市场党支部" in html
    assert _kpi(html, "orgs") == "1" and _kpi(html, "members") == "0"
    assert "长洲" not in html


def test_market_rows_of_a_county_are_paged(client, console, world, make_market):
    from app.console.pages.home import MARKETS_PER_PAGE

    for number in range(MARKETS_PER_PAGE + 3):
        make_market(name=f"万秀区分页市场{number:03d}", region_code="450403")
    console.login("reg-wanxiu", role="regulator", scope="region:450403")
    first = _html(client.get("/console/"))
    assert len(_chart_data(first)["bars"]["labels"]) == MARKETS_PER_PAGE
    assert "第 1 / 2 页，共 24 个市场" in first and 'href="/console/?region=450403&amp;page=2"' in first
    second = _html(client.get("/console/?region=450403&page=2"))
    assert len(_chart_data(second)["bars"]["labels"]) == 4


def test_the_page_has_no_inline_script_and_serves_the_chart_library(client, console, world):
    console.login("reg-city", role="regulator", scope="region:450400")
    home = client.get("/console/")
    assert "script-src 'self'" in home.headers["Content-Security-Policy"]
    html = _html(home)
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    for attributes, body in scripts:
        assert 'src="' in attributes or 'type="application/json"' in attributes, attributes
    library = re.search(r'src="(/console/static/vendor/chartjs/chart\.umd\.js\?v=[^"]+)"', html).group(1)
    served = client.get(library)
    assert served.status_code == 200 and b"Chart.js v4" in served.data[:200]
    assert "Chart.js" in _html(client.get("/console/static/vendor/chartjs/README.md"))


# -- in the browser ---------------------------------------------------------------------------------
def _canvas_has_drawn(page, selector: str) -> int:
    """How many pixels of the canvas are not transparent (read back from the browser)."""
    return page.evaluate("""selector => {
        const canvas = document.querySelector(selector);
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let drawn = 0;
        for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) drawn++;
        return drawn;
    }""", selector)


def _click_bar(page, index: int) -> None:
    """A real mouse click in the middle of category `index` of the bar chart."""
    box = page.locator("#bars-chart").bounding_box()
    x, y = page.evaluate("""index => {
        const chart = window.consoleCharts.bars;
        return [chart.scales.x.getPixelForValue(index), (chart.chartArea.top + chart.chartArea.bottom) / 2];
    }""", index)
    page.mouse.click(box["x"] + x, box["y"] + y)


def test_charts_draw_and_a_bar_click_drills_down(live_server, page, new_page, scan_login, shot, world):
    scan_login(page, "reg-city", role="regulator", scope="region:450400")
    page.wait_for_selector("html[data-charts=drawn]")
    assert _canvas_has_drawn(page, "#trend-chart") > 2000
    assert _canvas_has_drawn(page, "#bars-chart") > 2000
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    shot(page, "dashboard-1280x800")

    _click_bar(page, 1)  # 长洲区, the second of two categories
    page.wait_for_url(f"{live_server}/console/?region=450405")
    assert page.locator("h2#coverage-title").inner_text() == "长洲区覆盖情况"
    page.wait_for_selector("html[data-charts=drawn]")
    assert _canvas_has_drawn(page, "#bars-chart") > 1000
    page.get_by_role("link", name="梧州市").click()  # the breadcrumb back up
    page.wait_for_url(f"{live_server}/console/?region=450400")
    page.locator("[data-testid=rows-table]").get_by_role("link", name="万秀区").click()  # the table's link
    page.wait_for_url(f"{live_server}/console/?region=450403")
    assert WANXIU_MARKET in page.locator("[data-testid=rows-table]").inner_text()
    page.wait_for_selector("html[data-charts=drawn]")
    _click_bar(page, 0)  # a county's bars are its markets: a click opens the market's page
    page.wait_for_url(f"{live_server}/console/markets/{world.wanxiu.id}")
    assert not errors, errors

    phone = new_page(PHONE)
    scan_login(phone, "reg-city", role=None)
    phone.wait_for_selector("html[data-charts=drawn]")
    assert _canvas_has_drawn(phone, "#bars-chart") > 1000
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "nothing sticks out sideways on a phone"
    shot(phone, "dashboard-390x844")


def test_another_regions_regulator_sees_none_of_it_in_the_browser(live_server, page, scan_login, world):
    scan_login(page, "reg-liling", role="regulator", scope="region:430281")
    page.wait_for_selector("html[data-charts=drawn]")
    text = page.locator("main").inner_text()
    assert "醴陵" in text and "梧州" not in text and "万秀" not in text and "长洲" not in text
    page.goto(f"{live_server}/console/?region=450400")
    assert "该对象不在您的管辖范围内" in page.locator("[data-testid=refusal]").inner_text()
    assert page.locator("canvas").count() == 0
