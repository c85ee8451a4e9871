"""The market's public page /m/<token>: stalls with their verdicts and titles from the stored
badges, the market's own 示范市场 title, cacheable like the badge, fast path and Flask alike."""
import re
import shutil
import subprocess

import pytest
from tests.conftest import at

CHROMIUM = shutil.which("chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"]


def _model_market(shop, auth, clock, db):
    """A market with a trusted stall (pledge in force), a party branch, lenient market criteria."""
    from app.orgs.models import PartyOrg

    clock.set(at("2026-03-01 09:00"))
    market, manager, token, login, merchant_id = shop.trusted_stall(until="2026-06-30", pledge=True)
    db.session.add(PartyOrg(name="东中市场党支部", kind="branch", sector="market", region_code="450403",
                            market_id=market.id))
    db.session.commit()
    regulator = auth.login("reg-wx", role="regulator", scope="region:450403")
    put = shop.client.put("/api/v1/models/criteria", headers=regulator.headers, json={
        "region": "450403", "stall": {"pledge_days": 0}, "market": {"min_stalls": 1, "full_badge_pct": 100}})
    assert put.status_code == 200
    return market, manager, token, regulator


def test_market_page_lists_verdicts_and_titles_and_is_cacheable(shop, client, auth, clock, db):
    market, manager, token, regulator = _model_market(shop, auth, clock, db)
    url = f"/m/{market.token}"
    first = client.get(url)
    assert first.status_code == 200 and first.mimetype == "text/html"
    html = first.get_data(as_text=True)
    assert market.name in html and "A-01" in html and "放心摊位" in html and f'href="/s/{token}"' in html
    assert "另有空置摊位 1 个" in html  # A-02 has no merchant
    assert "示范市场" not in html
    assert not re.search(r"<(script|link)\b", html) and "http://" not in html and "https://" not in html
    assert first.headers["Cache-Control"].startswith("public, max-age=")
    assert "default-src 'none'" in first.headers["Content-Security-Policy"]
    assert client.get(url, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304

    # Candidates: the market meets its criteria; conferred; the page shows both titles.
    found = client.get("/api/v1/models/candidates?region=450403&kind=market", headers=regulator.headers).get_json()
    assert found["total"] == 1 and found["items"][0]["full_badge_pct"] == 100.0
    assert client.post("/api/v1/models", headers=regulator.headers,
                       json={"kind": "stall", "target": token, "citation": "诚信经营"}).status_code == 201
    conferred = client.post("/api/v1/models", headers=regulator.headers,
                            json={"kind": "market", "target": str(market.id), "citation": "放心市场建设先进"})
    assert conferred.status_code == 201, conferred.get_json()
    page = client.get(url)
    assert page.headers["ETag"] != first.headers["ETag"]
    html = page.get_data(as_text=True)
    assert "示范市场" in html and "放心市场建设先进" in html and "示范摊位" in html
    # Flask's view (a query string skips the fast path) gives the same bytes.
    assert client.get(url + "?page=1").data == page.data

    # The permit expires: the stall turns 部分公示, its title and the market's are suspended.
    clock.set(at("2026-07-01 00:00"))
    html = client.get(url).get_data(as_text=True)
    assert "部分公示" in html and "称号暂停显示" in html and 'class="tag">示范摊位' not in html

    # Withdrawn: gone from the page at once.
    title_id = conferred.get_json()["id"]
    assert client.post(f"/api/v1/models/{title_id}/withdraw", json={"reason": "市场整改"},
                       headers=regulator.headers).status_code == 200
    assert "示范市场" not in client.get(url).get_data(as_text=True)


def test_a_complaint_shows_on_the_market_page_at_once(shop, client, auth, clock, db):
    market, manager, token, regulator = _model_market(shop, auth, clock, db)
    url = f"/m/{market.token}"
    assert "近期有投诉" in client.get(url).get_data(as_text=True)  # the legend
    consumer = auth.login("consumer-1")
    created = client.post(f"/api/v1/public/stalls/{token}/feedback", json={"category": "缺斤短两", "text": "少秤"},
                          headers=consumer.headers)
    client.post(f"/api/v1/feedback/{created.get_json()['id']}/review", json={"decision": "uphold", "reason": "属实"},
                headers=manager.headers)
    assert "近期有经核实的投诉" in client.get(url).get_data(as_text=True)


def test_unknown_closed_and_paged(shop, client, auth, clock, db, monkeypatch):
    from app.exemplars import market_page

    market, manager, token, regulator = _model_market(shop, auth, clock, db)
    assert client.get("/m/NoSuchMarket1").status_code == 404
    assert "未找到该市场" in client.get("/m/NoSuchMarket1").get_data(as_text=True)
    assert client.get("/m/" + "x" * 40).status_code == 404
    assert client.get(f"/api/v1/public/stalls/{token}").status_code == 200
    monkeypatch.setattr(market_page, "PAGE_SIZE", 1)
    market_page.local_pages.clear()
    second = shop.merchant(openid="merchant-b", uscc="91110000802100433B", name="东中水果店")
    stalls = client.get(f"/api/v1/markets/{market.id}/stalls", headers=manager.headers).get_json()["items"]
    other = next(s["token"] for s in stalls if s["token"] != token)
    shop.claim(second[0], second[1], other)
    shop.review_claim(manager, other)
    assert "第 1/2 页" in client.get(f"/m/{market.token}").get_data(as_text=True)
    assert "东中水果店" in client.get(f"/m/{market.token}?page=2").get_data(as_text=True)
    closing = client.patch(f"/api/v1/markets/{market.id}", json={"closed": True}, headers=regulator.headers)
    assert closing.status_code == 200, closing.get_json()
    market_page.local_pages.clear()  # as at this worker's next version check (VERSION_RECHECK)
    closed = client.get(f"/m/{market.token}")
    assert closed.status_code == 410 and "该市场已关闭" in closed.get_data(as_text=True)


def test_market_tokens_are_random_and_unique(make_market):
    a, b = make_market(name="甲市场"), make_market(name="乙市场")
    assert len(a.token) == 12 and a.token != b.token and a.token.isalnum()


def _chromium(args, tmp_path, timeout=60):
    return subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium 未安装（Debian 包 chromium）：跳过真实浏览器测试")
def test_market_page_renders_in_headless_chromium(shop, auth, clock, db, tmp_path, request):
    market, manager, token, regulator = _model_market(shop, auth, clock, db)
    shop.client.post("/api/v1/models", headers=regulator.headers,
                     json={"kind": "market", "target": str(market.id), "citation": "放心市场建设先进"})
    db.session.commit()
    live_server = request.getfixturevalue("live_server")
    dom = _chromium(["--dump-dom", f"{live_server}/m/{market.token}"], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert f'<h1 id="market">{market.name}</h1>' in dom.stdout and "放心摊位" in dom.stdout
    assert "示范市场" in dom.stdout
    shot = tmp_path / "market.png"
    assert _chromium([f"--screenshot={shot}", "--window-size=414,896", f"{live_server}/m/{market.token}"],
                     tmp_path).returncode == 0
    assert shot.stat().st_size > 5_000

