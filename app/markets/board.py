"""The market's entrance board (公示牌): one A4 page with the market's name and a large code of its
public page /m/<token>, where a shopper sees every stall's licences, pledge and 示范 title.

The code and the font are the sticker sheet's (app/markets/qr.py): vector rectangles, and
STSong-Light, which every PDF reader has."""
from __future__ import annotations

from typing import IO

from app.core.regions import Region, parent_of, region_level
from app.extensions import db
from app.markets.models import Market
from app.markets.qr import cjk_font, draw_qr, fit_text, market_url, qr_png

# Two lines, large enough to read from a step away (the sentence is one).
BOARD_CAPTION_LINES = ("扫码查看本市场摊位", "亮照亮证、诚信承诺与示范摊位")
BOARD_CAPTION = "".join(BOARD_CAPTION_LINES)
# Separated by ideographic spaces: STSong-Light's encoding has no "·".
BOARD_MOTTO = "亮照亮证\u3000诚信经营\u3000摊位公示"
RED = (0.70, 0.15, 0.12)  # the public page's header red (#b3261e)
PNG_BOX = 16  # pixels per module: twice the sticker's, for a board printed large


def board_qr_png(market: Market) -> bytes:
    return qr_png(market_url(market.token), box=PNG_BOX)


def _name(code: str | None) -> str | None:
    region = db.session.get(Region, code) if code else None
    # "河南省-省直辖县级行政区划" and the like name a grouping, not a place.
    return region.name if region is not None and "直辖" not in region.name else None


def place_name(code: str) -> str:
    """The market's region as a sign would name it: a county with its city (梧州市万秀区), or a
    municipality's district with the municipality (北京市东城区)."""
    own = _name(code) or ""
    if region_level(code) < 3:
        return own
    parent = parent_of(code)
    above = _name(parent) or _name(parent_of(parent) if parent else None)
    return f"{above or ''}{own}"


def authority_line(market: Market) -> str:
    """Who stands behind the board: the market regulator of the market's region (the app knows
    the region, not the office's exact name)."""
    place = place_name(market.region_code)
    return f"{place}市场监管部门指导" if place else "市场监管部门指导"


def write_board_poster(out: IO[bytes], market: Market) -> None:
    """One A4 page, top to bottom: the market's name on a red band, the motto, the code (15 cm,
    quiet zone included: a phone reads it from a couple of metres), what scanning shows, the
    address and who stands behind it."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas

    font = cjk_font()
    width, height = A4
    centre, inner = width / 2, width - 2 * 24 * mm  # text width inside the frame
    url = market_url(market.token)
    canvas = Canvas(out, pagesize=A4, pageCompression=1, invariant=1)
    canvas.setTitle(f"{market.name} 公示牌")

    canvas.setStrokeColorRGB(*RED)
    canvas.setLineWidth(3)
    canvas.rect(10 * mm, 10 * mm, width - 20 * mm, height - 20 * mm, stroke=1, fill=0)
    band_bottom = height - 54 * mm
    canvas.setFillColorRGB(*RED)
    canvas.rect(10 * mm, band_bottom, width - 20 * mm, 44 * mm, stroke=0, fill=1)
    canvas.setFillColorRGB(1, 1, 1)
    size, lines = name_lines(market.name, font, inner)
    canvas.setFont(font, size)
    leading = size * 1.2
    first = band_bottom + 22 * mm + (len(lines) - 1) * leading / 2 - size * 0.35
    for number, line in enumerate(lines):
        canvas.drawCentredString(centre, first - number * leading, line)

    canvas.setFillColorRGB(*RED)
    canvas.setFont(font, 24)
    canvas.drawCentredString(centre, band_bottom - 15 * mm, BOARD_MOTTO)

    side = 150 * mm
    code_bottom = band_bottom - 21 * mm - side
    canvas.setFillColorRGB(0, 0, 0)
    draw_qr(canvas, url, centre - side / 2, code_bottom, side)

    size = min(fitting_size(line, font, inner, 30) for line in BOARD_CAPTION_LINES)
    canvas.setFont(font, size)
    for number, line in enumerate(BOARD_CAPTION_LINES):
        canvas.drawCentredString(centre, code_bottom - 6 * mm - number * size * 1.3, line)
    canvas.setFillGray(0.4)
    canvas.setFont(font, 10)
    canvas.drawCentredString(centre, code_bottom - 10 * mm - 2 * size * 1.3 + 4, fit_text(url, font, 10, inner))

    canvas.setFillGray(0.15)
    canvas.setFont(font, 13)
    footer = [f"地址：{market.address}"] if market.address else []
    footer.append(f"{authority_line(market)}\u3000投诉举报电话 12315")
    for number, line in enumerate(reversed(footer)):
        canvas.drawCentredString(centre, 17 * mm + number * 7 * mm, fit_text(line, font, 13, inner))
    canvas.showPage()
    canvas.save()


def fitting_size(text: str, font: str, width: float, largest: float, smallest: float = 12) -> float:
    """The largest size (whole points, down to `smallest`) at which `text` fits `width`."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    size = largest
    while size > smallest and stringWidth(text, font, size) > width:
        size -= 1
    return size


def name_lines(name: str, font: str, width: float) -> tuple[float, list[str]]:
    """The market's name on the band: one line down to 30 pt, else two balanced lines down to
    20 pt, else as much as two 20 pt lines hold, cut with "…"."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    size = fitting_size(name, font, width, 44, 30)
    if stringWidth(name, font, size) <= width:
        return size, [name]
    half = (len(name) + 1) // 2
    lines = [name[:half], name[half:]]
    size = min(fitting_size(line, font, width, 30, 20) for line in lines)
    if all(stringWidth(line, font, size) <= width for line in lines):
        return size, lines
    cut = next(n for n in range(len(name), 0, -1) if stringWidth(name[:n], font, size) <= width)
    return size, [name[:cut], fit_text(name[cut:], font, size, width)]
