"""The market's entrance board: its code (PNG) and the A4 poster decode to the market's public
page /m/<token>; the poster names the market, says what scanning shows and who stands behind it;
only the market's managers and the regulators of its region get them."""
import io
import re
import shutil
import subprocess

import pytest
import zxingcpp
from PIL import Image

from tests.conftest import error_code

POPPLER = all(shutil.which(tool) for tool in ("pdftoppm", "pdftotext", "pdfinfo"))


def test_the_board_code_decodes_to_the_market_page(shop, client, auth, app):
    market = shop.market()
    manager = shop.manager(market)
    response = client.get(f"/api/v1/markets/{market.id}/board-qrcode.png", headers=manager.headers)
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.headers["Cache-Control"] == "private, max-age=3600"
    url = f"{app.config['PUBLIC_BASE_URL']}/m/{market.token}"
    assert [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(response.data)))] == [url]
    assert client.get(url.removeprefix(app.config["PUBLIC_BASE_URL"])).status_code == 200  # the page it opens

    regulator = auth.login("reg-wx", role="regulator", scope="region:450403")
    assert client.get(f"/api/v1/markets/{market.id}/board-qrcode.png", headers=regulator.headers).status_code == 200


def test_only_the_market_s_managers_and_regulators_get_the_board(shop, client, auth):
    market = shop.market()
    other_manager = shop.manager(shop.market(name="长洲区外贸市场", region_code="450405"), "manager-2")
    other_regulator = auth.login("reg-cz", role="regulator", scope="region:450405")
    rider = auth.login("rider", role="rider")
    for path in ("board-qrcode.png", "board-poster.pdf"):
        url = f"/api/v1/markets/{market.id}/{path}"
        assert client.get(url).status_code == 401
        assert error_code(client.get(url, headers=rider.headers)) == "FORBIDDEN"
        # Another market's manager or region's regulator cannot tell this market exists.
        assert client.get(url, headers=other_manager.headers).status_code == 404
        assert client.get(url, headers=other_regulator.headers).status_code == 404
        assert error_code(client.get(f"/api/v1/markets/98765/{path}",
                                     headers=shop.manager(market).headers)) == "MARKET_NOT_FOUND"


@pytest.mark.skipif(not POPPLER, reason="poppler-utils 未安装：跳过 PDF 渲染解码")
def test_the_poster_is_one_a4_page_that_scans_to_the_market_page(shop, client, app, db, tmp_path, regions):
    market = shop.market()
    market.address = "梧州市万秀区东中路 88 号"
    db.session.commit()
    response = client.get(f"/api/v1/markets/{market.id}/board-poster.pdf", headers=shop.manager(market).headers)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Cache-Control"] == "private, no-store"
    assert f"market-{market.id}-board.pdf" in response.headers["Content-Disposition"]
    pdf = tmp_path / "board.pdf"
    pdf.write_bytes(response.data)
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"^Pages:\s+1$", info, re.M) and "(A4)" in info
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    flat = re.sub(r"\s+", "", text)
    for line in (market.name, "扫码查看本市场摊位亮照亮证、诚信承诺与示范摊位", "地址：梧州市万秀区东中路88号",
                 "梧州市万秀区市场监管部门指导", "12315"):
        assert line in flat, text
    # At 100 dpi (a phone's view of the printed page is far sharper) the code scans to the page.
    subprocess.run(["pdftoppm", "-r", "100", "-png", str(pdf), str(tmp_path / "page")], check=True, timeout=60)
    [page] = tmp_path.glob("page*.png")
    codes = [r.text for r in zxingcpp.read_barcodes(Image.open(page))]
    assert codes == [f"{app.config['PUBLIC_BASE_URL']}/m/{market.token}"]


def test_a_long_name_wraps_on_the_band_and_the_place_is_named_from_the_region_table(app, db, regions):
    from reportlab.pdfbase.pdfmetrics import stringWidth

    from app.markets.board import name_lines, place_name
    from app.markets.qr import cjk_font

    assert place_name("450403") == "梧州市万秀区"
    assert place_name("450400") == "梧州市"
    font, width = cjk_font(), 400
    size, lines = name_lines("东中农贸市场", font, width)
    assert lines == ["东中农贸市场"] and size == 44
    name = "梧州市万秀区某某综合批发市场暨农副产品集散中心"
    size, lines = name_lines(name, font, width)
    assert len(lines) == 2 and "".join(lines) == name and 20 <= size <= 30
    size, lines = name_lines("长" * 100, font, width)
    assert size == 20 and lines[1].endswith("…") and all(stringWidth(line, font, size) <= width for line in lines)
