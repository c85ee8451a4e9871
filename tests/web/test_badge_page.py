"""The H5 badge page: small, Chinese, no external assets, and it renders in real Chromium."""
import re
import shutil
import subprocess

import pytest

from tests.conftest import at

CHROMIUM = shutil.which("chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"]


def test_page_shows_verdict_items_and_has_no_external_assets(shop, client, clock):
    clock.set(at("2026-03-01 09:00"))
    market, manager, token, login, merchant_id = shop.trusted_stall(until="2027-06-30")
    client.put(f"/api/v1/stalls/{token}/rules", json={"weighing": "市场设有公平秤"}, headers=login.headers)
    response = client.get(f"/s/{token}")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert len(response.data) < 16_000
    assert '<html lang="zh-CN">' in html and 'name="viewport"' in html
    assert "部分公示" in html  # no pledge yet
    assert "✓" in html and "✗" in html and "暂无生效的诚信经营承诺" in html
    assert "摊位 A-01" in html and "市场设有公平秤" in html and "反映问题" in html
    assert "近 90 天没有经核实的投诉" in html
    # Issue 12: the operator is not a party member: nothing is said about it, no red mark.
    assert "共产党员" not in html and "尚未认证" not in html
    # Thumbnails of the verified documents, served from this site only.
    thumbs = re.findall(r'<img src="([^"]+)"', html)
    assert len(thumbs) == 2 and all(src.startswith("/api/v1/public/stalls/") and "thumb=true" in src
                                    for src in thumbs)
    assert client.get(thumbs[0].replace("&amp;", "&")).status_code == 200
    assert not re.search(r'<(script|link)\b', html)
    assert "http://" not in html and "https://" not in html
    assert response.headers["Cache-Control"].startswith("public, max-age=")
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_page_escapes_merchant_text(shop, client, clock):
    clock.set(at("2026-03-01 09:00"))
    market, manager, stalls, login, merchant_id = shop.held_stall()
    client.put(f"/api/v1/stalls/{stalls[0]['token']}/rules", json={"returns": "<script>alert(1)</script>"},
               headers=login.headers)
    html = client.get(f"/s/{stalls[0]['token']}").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html


def _chromium(args, tmp_path, timeout=60):
    return subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium 未安装（Debian 包 chromium）：跳过真实浏览器测试")
def test_page_renders_in_headless_chromium(shop, clock, live_server, tmp_path, db):
    clock.set(at("2026-03-01 09:00"))
    from app.markets.models import Stall

    market, manager, token, login, merchant_id = shop.trusted_stall(until="2027-06-30")
    void_market_stall = db.session.query(Stall).filter(Stall.token != token).first()
    old_token = void_market_stall.token
    shop.client.post(f"/api/v1/stalls/{old_token}/reissue", headers=manager.headers)
    db.session.commit()
    url = f"{live_server}/s/{token}"
    dom = _chromium(["--dump-dom", url], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert '<h1 id="verdict">部分公示</h1>' in dom.stdout
    assert "亮照" in dom.stdout and "食品经营许可证" in dom.stdout
    shot = tmp_path / "badge.png"
    result = _chromium([f"--screenshot={shot}", "--window-size=414,896", url], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 5_000
    from PIL import Image
    assert Image.open(shot).size == (414, 896)
    void = _chromium(["--dump-dom", f"{live_server}/s/{old_token}"], tmp_path)
    assert "此二维码已作废" in void.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium 未安装（Debian 包 chromium）：跳过真实浏览器测试")
def test_what_a_consumer_reads_for_a_complaint_a_non_member_and_a_void_sticker(shop, clock, live_server,
                                                                              tmp_path, db, auth):
    """Issue 12 item 1, in Chromium: an upheld complaint has its own verdict and wording; a
    non-member operator is not marked down; a void sticker names the stall it belonged to."""
    clock.set(at("2026-03-01 09:00"))
    market, manager, token, login, merchant_id = shop.trusted_stall(until="2027-06-30", pledge=True)
    consumer = auth.login("consumer")
    created = shop.client.post(f"/api/v1/public/stalls/{token}/feedback",
                               json={"category": "缺斤短两", "text": "称重少了二两"}, headers=consumer.headers)
    shop.client.post(f"/api/v1/feedback/{created.get_json()['id']}/review",
                     json={"decision": "uphold", "reason": "复秤属实"}, headers=manager.headers)
    db.session.commit()
    dom = _chromium(["--dump-dom", f"{live_server}/s/{token}"], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert '<h1 id="verdict">近期有经核实的投诉</h1>' in dom.stdout
    assert "近 90 天有 1 件投诉经市场核实属实" in dom.stdout
    assert "共产党员" not in dom.stdout and "部分公示" not in dom.stdout
    shot = tmp_path / "complaint.png"
    assert _chromium([f"--screenshot={shot}", "--window-size=414,896", f"{live_server}/s/{token}"],
                     tmp_path).returncode == 0
    assert shot.stat().st_size > 5_000
    shop.client.post(f"/api/v1/stalls/{token}/reissue", headers=manager.headers)
    db.session.commit()
    import time

    from app.badge.cache import VERSION_RECHECK

    time.sleep(VERSION_RECHECK + 0.2)  # the server is another worker: it confirms versions this often
    # Another phone (a fresh profile): this one may keep the page for its max-age, by design.
    void = _chromium(["--dump-dom", f"{live_server}/s/{token}"], tmp_path / "other-phone")
    assert "此二维码已作废" in void.stdout and f"{market.name} A-01 号摊位" in void.stdout
