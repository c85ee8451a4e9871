"""Sticker codes decode back to the stall's URL; the mini-program code is fetched once; the A4
sheet's vector codes decode too."""
import io
import shutil
import subprocess

import pytest
import zxingcpp
from PIL import Image

from app.markets.qr import merged_rectangles, qr_matrix
from tests.conftest import error_code

PDFTOPPM = shutil.which("pdftoppm")


def test_png_endpoint_decodes_to_the_public_url(shop, client, app):
    market = shop.market()
    manager = shop.manager(market)
    token = shop.stalls(market, manager, ["A-01"])[0]["token"]
    response = client.get(f"/api/v1/stalls/{token}/qrcode.png?kind=url", headers=manager.headers)
    assert response.status_code == 200 and response.mimetype == "image/png"
    image = Image.open(io.BytesIO(response.data))
    assert image.mode == "1"
    results = zxingcpp.read_barcodes(image)
    assert [r.text for r in results] == [f"{app.config['PUBLIC_BASE_URL']}/s/{token}"]
    rider = shop.auth.login("rider", role="rider")
    assert client.get(f"/api/v1/stalls/{token}/qrcode.png", headers=rider.headers).status_code == 403
    assert client.get(f"/api/v1/stalls/{token}/qrcode.png?kind=bogus", headers=manager.headers).status_code == 422


def test_wxacode_is_fetched_once_and_cached(shop, client, wechat_sim):
    market = shop.market()
    manager = shop.manager(market)
    token = shop.stalls(market, manager, ["A-01"])[0]["token"]
    first = client.get(f"/api/v1/stalls/{token}/qrcode.png?kind=wxacode", headers=manager.headers)
    calls = wechat_sim.sim_state.received("wxa/getwxacodeunlimit")
    second = client.get(f"/api/v1/stalls/{token}/qrcode.png?kind=wxacode", headers=manager.headers)
    assert first.status_code == second.status_code == 200 and first.data == second.data
    assert len(wechat_sim.sim_state.received("wxa/getwxacodeunlimit")) == len(calls) >= 1
    assert wechat_sim.sim_state.wxacode_calls == len(calls)
    assert calls[0]["body"]["scene"] == token and not calls[0]["body"]["page"].startswith("/")
    assert zxingcpp.read_barcodes(Image.open(io.BytesIO(first.data)))[0].text == f"wxacode:{token}"


def test_wxacode_fault_is_503_and_nothing_cached(shop, client, wechat_sim):
    market = shop.market()
    manager = shop.manager(market)
    token = shop.stalls(market, manager, ["A-01"])[0]["token"]
    wechat_sim.sim_state.add_fault("wxa/getwxacodeunlimit", errcode=-1)
    failed = client.get(f"/api/v1/stalls/{token}/qrcode.png?kind=wxacode", headers=manager.headers)
    assert failed.status_code == 503 and error_code(failed) == "WECHAT_UNAVAILABLE"
    assert client.get(f"/api/v1/stalls/{token}/qrcode.png?kind=wxacode", headers=manager.headers).status_code == 200


def test_merged_rectangles_cover_exactly_the_dark_modules():
    matrix = qr_matrix("http://127.0.0.1:5000/s/AbCdEfGhIjKl")
    covered = set()
    for col, row, width, height in merged_rectangles(matrix):
        for r in range(row, row + height):
            for c in range(col, col + width):
                assert (r, c) not in covered
                covered.add((r, c))
    dark = {(r, c) for r, line in enumerate(matrix) for c, on in enumerate(line) if on}
    assert covered == dark
    assert len(merged_rectangles(matrix)) < len(dark) / 2


def _decode_pdf(pdf: bytes, tmp_path) -> list[str]:
    source = tmp_path / "sheet.pdf"
    source.write_bytes(pdf)
    subprocess.run([PDFTOPPM, "-r", "150", "-png", str(source), str(tmp_path / "page")], check=True, timeout=60)
    texts = []
    for page in sorted(tmp_path.glob("page*.png")):
        texts += [r.text for r in zxingcpp.read_barcodes(Image.open(page))]
    return texts


@pytest.mark.skipif(PDFTOPPM is None, reason="pdftoppm（poppler-utils）未安装：跳过 PDF 渲染解码")
def test_sticker_sheet_decodes_to_the_right_urls(shop, client, app, tmp_path):
    market = shop.market()
    manager = shop.manager(market)
    stalls = shop.stalls(market, manager, [f"A-{i:02d}" for i in range(1, 27)])  # 2 pages
    response = client.get(f"/api/v1/markets/{market.id}/qr-sheet.pdf", headers=manager.headers)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF") and response.data.count(b"/Type /Page\n") + \
        response.data.count(b"/Type /Page ") >= 2
    assert len(response.data) < 2 * 60 * 1024
    base = app.config["PUBLIC_BASE_URL"]
    assert sorted(_decode_pdf(response.data, tmp_path)) == sorted(f"{base}/s/{s['token']}" for s in stalls)
    other = shop.manager(shop.market(name="长洲区市场", region_code="450405"), "manager-2")
    # Another region's manager cannot tell this market exists (existence hiding).
    assert client.get(f"/api/v1/markets/{market.id}/qr-sheet.pdf", headers=other.headers).status_code == 404


@pytest.mark.skipif(PDFTOPPM is None, reason="pdftoppm（poppler-utils）未安装：跳过 PDF 渲染解码")
def test_cli_writes_the_sheet_with_progress(shop, app, db, tmp_path):
    market = shop.market()
    manager = shop.manager(market)
    stalls = shop.stalls(market, manager, [f"B-{i:02d}" for i in range(1, 4)])
    out = tmp_path / "out.pdf"
    refused = app.test_cli_runner().invoke(args=["stalls", "qr-sheet", str(market.id), "-o", str(out)])
    assert refused.exit_code != 0 and "PUBLIC_BASE_URL" in refused.output and not out.exists()  # a loopback base
    result = app.test_cli_runner().invoke(args=["stalls", "qr-sheet", str(market.id), "-o", str(out), "--allow-local"])
    assert result.exit_code == 0, result.output
    assert "1/1 页（100%）" in result.output and "预计还需" in result.output and "3 个摊位" in result.output
    decoded = _decode_pdf(out.read_bytes(), tmp_path)
    assert sorted(decoded) == sorted(f"{app.config['PUBLIC_BASE_URL']}/s/{s['token']}" for s in stalls)
    missing = app.test_cli_runner().invoke(args=["stalls", "qr-sheet", "9999", "-o", str(out), "--allow-local"])
    assert missing.exit_code != 0 and "不存在" in missing.output
