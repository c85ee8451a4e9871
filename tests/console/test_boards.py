"""市场公示牌 on the console's market page: the links are there, the code decodes to the market's
public page, the poster is one A4 page; someone else's market is a 404, as for the API."""
import io

import zxingcpp
from PIL import Image

from tests.jobs.test_jobs import pdf_pages


def test_the_market_page_links_the_board_code_and_poster(client, console, shop, app, regions):
    market = shop.market()
    other = shop.market(name="长洲区外贸市场", region_code="450405")
    console.login("mgr", role="market_manager", scope=f"market:{market.id}")
    page = client.get(f"/console/markets/{market.id}").get_data(as_text=True)
    assert "公示牌二维码" in page and f'href="/console/markets/{market.id}/board-poster.pdf"' in page
    code = client.get(f"/console/markets/{market.id}/board-qrcode.png?download=1")
    assert code.status_code == 200 and code.mimetype == "image/png" and "attachment" in code.headers["Content-Disposition"]
    decoded = [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(code.data)))]
    assert decoded == [f"{app.config['PUBLIC_BASE_URL']}/m/{market.token}"]
    poster = client.get(f"/console/markets/{market.id}/board-poster.pdf")
    assert poster.status_code == 200 and poster.mimetype == "application/pdf" and pdf_pages(poster.data) == 1
    for path in ("board-qrcode.png", "board-poster.pdf"):
        assert client.get(f"/console/markets/{other.id}/{path}").status_code == 404
