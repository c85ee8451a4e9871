"""市场公示牌 on the console's market page: the entrance board's code (PNG) and its A4 poster, as
GET /markets/{id}/board-qrcode.png and board-poster.pdf give them (the same services: someone
else's market is a 404)."""
from __future__ import annotations

import io

from flask import Response, g, request, send_file

from app.console.blueprint import bp
from app.markets import services
from app.markets.board import board_qr_png, write_board_poster


@bp.get("/markets/<int:market_id>/board-qrcode.png")
def board_qrcode(market_id: int):
    market, _ = services.manage_market(g.console_user, market_id)
    response = Response(board_qr_png(market), mimetype="image/png")
    if request.args.get("download"):
        response.headers["Content-Disposition"] = f"attachment; filename=market-{market.id}-board.png"
    return response


@bp.get("/markets/<int:market_id>/board-poster.pdf")
def board_poster(market_id: int):
    market, _ = services.manage_market(g.console_user, market_id)
    out = io.BytesIO()
    write_board_poster(out, market)
    out.seek(0)
    return send_file(out, mimetype="application/pdf", as_attachment=True,
                     download_name=f"{market.name}-公示牌.pdf")
