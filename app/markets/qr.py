"""Sticker codes: the plain QR of a stall's public URL (PNG), the mini-program code from
wxacode.getUnlimited (fetched once per token, then kept), and the printable A4 sticker sheet."""
from __future__ import annotations

import io
from typing import IO, Callable, Iterable, Iterator

import segno
from flask import current_app
from PIL import Image
from sqlalchemy import select

from app.extensions import db

MINIPROGRAM_PAGE = "pages/stall/index"  # the mini-program page that reads `scene` (the token)
PNG_BOX = 8  # pixels per module
QUIET_ZONE = 4  # modules of white around the code, as the standard asks
STICKER_CAPTION = "扫码查看亮照亮证与诚信承诺"


def stall_url(token: str) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL']}/s/{token}"


def market_url(token: str) -> str:
    """The market's public page (/m/<token>, app/exemplars/market_page.py): its entrance board's code."""
    return f"{current_app.config['PUBLIC_BASE_URL']}/m/{token}"


def qr_matrix(data: str):
    """Modules of the code without quiet zone, row by row (1 = dark). Level M survives a
    scuffed sticker. segno's encoder: about 20 % faster than qrcode's on these URLs (make bench)."""
    return segno.make(data, error="m", micro=False, boost_error=False).matrix


def qr_png(data: str, box: int = PNG_BOX, quiet: int = QUIET_ZONE) -> bytes:
    """1-bit PNG built straight from the matrix (no per-module drawing): one byte per module,
    scaled up with nearest-neighbour, compress level 6."""
    matrix = qr_matrix(data)
    size = len(matrix) + 2 * quiet
    white_row = b"\xff" * size
    margin = b"\xff" * quiet
    rows = [white_row] * quiet
    rows += [margin + bytes(0 if dark else 255 for dark in row) + margin for row in matrix]
    rows += [white_row] * quiet
    small = Image.frombytes("L", (size, size), b"".join(rows))
    image = small.resize((size * box, size * box), Image.Resampling.NEAREST).convert("1", dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def wxacode_png(token: str) -> bytes:
    """The mini-program code for a token: from the table if fetched before, else from WeChat
    (called outside any write, then stored; a concurrent fetch of the same token is harmless)."""
    from app.core.db import insert_ignore
    from app.core.time import utcnow
    from app.markets.models import StallCode
    from app.wechat.client import wechat_client, wechat_errors

    stored = db.session.scalar(select(StallCode.png).where(StallCode.token == token))
    if stored is not None:
        return stored
    with wechat_errors():
        png = wechat_client().get_wxa_code_unlimited(scene=token, page=MINIPROGRAM_PAGE)
    insert_ignore(StallCode, {"token": token, "png": png, "created_at": utcnow()}, ["token"])
    return png


# -- the A4 sticker sheet --------------------------------------------------------------------------
def merged_rectangles(matrix: list[list[bool]]) -> list[tuple[int, int, int, int]]:
    """Dark modules as few rectangles: runs of dark modules in a row, and identical runs in
    consecutive rows merged downwards. Returns (col, row, width, height), row 0 at the top."""
    done: list[tuple[int, int, int, int]] = []
    open_runs: dict[tuple[int, int], tuple[int, int]] = {}  # (col, width) -> (top row, height)
    for r, row in enumerate(matrix):
        runs, c, n = set(), 0, len(row)
        while c < n:
            if row[c]:
                start = c
                while c < n and row[c]:
                    c += 1
                runs.add((start, c - start))
            else:
                c += 1
        for run in list(open_runs):
            if run not in runs:
                top, height = open_runs.pop(run)
                done.append((run[0], top, run[1], height))
        for run in runs:
            if run in open_runs:
                top, height = open_runs[run]
                open_runs[run] = (top, height + 1)
            else:
                open_runs[run] = (r, 1)
    done += [(run[0], top, run[1], height) for run, (top, height) in open_runs.items()]
    return done


def qr_pdf_ops(matrix: list[list[bool]]) -> str:
    """PDF path operators for the code in module units (caller sets the transform)."""
    n = len(matrix)
    ops = [f"{c} {n - r - h} {w} {h} re" for c, r, w, h in merged_rectangles(matrix)]
    ops.append("f")
    return "\n".join(ops)


COLUMNS, ROWS = 4, 6
PER_PAGE = COLUMNS * ROWS


def fit_text(text: str, font: str, size: float, width: float) -> str:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    if stringWidth(text, font, size) <= width:
        return text
    while text and stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text + "…"


CJK_FONT = "STSong-Light"


def cjk_font() -> str:
    """STSong-Light, registered once: a CID font every PDF reader has, so nothing is embedded or
    downloaded."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    return CJK_FONT


def draw_qr(canvas, data: str, x: float, y: float, side: float) -> None:
    """The code of `data` as vector rectangles in the square (x, y, side), quiet zone included."""
    matrix = qr_matrix(data)
    unit = side / (len(matrix) + 2 * QUIET_ZONE)
    left, bottom = x + QUIET_ZONE * unit, y + QUIET_ZONE * unit
    canvas.saveState()
    canvas.addLiteral(f"1 0 0 1 {left:.2f} {bottom:.2f} cm {unit:.4f} 0 0 {unit:.4f} 0 0 cm")
    canvas.addLiteral(qr_pdf_ops(matrix))
    canvas.restoreState()


def write_sticker_sheet(out: IO[bytes], market_name: str, stalls: Iterable[tuple[str, str]],
                        progress: Callable[[int], None] | None = None) -> int:
    """Write an A4 PDF of stickers (4×6 a page) for (number, token) pairs to `out`; returns pages.

    Codes are vector rectangles from the QR matrix, text is in STSong-Light (a CID font every
    PDF reader has, so nothing is embedded or downloaded)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas

    font = cjk_font()
    page_w, page_h = A4
    margin = 8 * mm
    cell_w = (page_w - 2 * margin) / COLUMNS
    cell_h = (page_h - 2 * margin) / ROWS
    canvas = Canvas(out, pagesize=A4, pageCompression=1, invariant=1)
    canvas.setTitle(f"{market_name} 摊位二维码")
    pages, placed = 0, 0
    name = fit_text(market_name, font, 7.5, cell_w - 8)
    for number, token in stalls:
        slot = placed % PER_PAGE
        if slot == 0 and placed:
            canvas.showPage()
            pages += 1
            if progress:
                progress(pages)
        col, row = slot % COLUMNS, slot // COLUMNS
        x = margin + col * cell_w
        y = page_h - margin - (row + 1) * cell_h
        _draw_sticker(canvas, font, x, y, cell_w, cell_h, name, number, stall_url(token))
        placed += 1
    canvas.showPage()
    pages += 1
    if progress:
        progress(pages)
    canvas.save()
    return pages


def _draw_sticker(canvas, font, x, y, w, h, market_name, number, url) -> None:
    canvas.setStrokeGray(0.75)
    canvas.setLineWidth(0.3)
    canvas.setDash(2, 2)
    canvas.rect(x + 2, y + 2, w - 4, h - 4, stroke=1, fill=0)
    canvas.setFillGray(0)
    canvas.setFont(font, 7.5)
    canvas.drawCentredString(x + w / 2, y + h - 13, market_name)
    canvas.setFont(font, 13)
    canvas.drawCentredString(x + w / 2, y + h - 28, fit_text(f"摊位 {number}", font, 13, w - 8))
    canvas.setFont(font, 6.8)
    canvas.drawCentredString(x + w / 2, y + 7, STICKER_CAPTION)
    side = h - 52  # code area including its quiet zone
    draw_qr(canvas, url, x + (w - side) / 2, y + 16, side)


def market_stall_rows(market_id: int, batch: int = 500) -> Iterator[tuple[str, str]]:
    """(number, token) of a market's stalls in number order, read in batches (no ORM objects)."""
    from app.markets.models import Stall

    stmt = (select(Stall.number, Stall.token).where(Stall.market_id == market_id)
            .order_by(Stall.number, Stall.id).execution_options(yield_per=batch))
    for number, token in db.session.execute(stmt):
        yield number, token
