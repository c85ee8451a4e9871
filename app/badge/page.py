"""The H5 badge page `/s/{token}`: what a consumer's phone camera opens from a stall sticker.

Rendered from the same records as the JSON badge and cached the same way (pre-rendered bytes
keyed by token and badge version, never past the badge's changes_at)."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from app.badge import cache as badge_cache
from app.badge.facts import fact

bp = Blueprint("badge", __name__, template_folder="templates")

VOID_PAGE_MAX_AGE = 300


def _html(body: bytes | str, status: int, max_age: int):
    # Inline CSS only, no scripts, images from this site only (see badge_cache.PAGE_CSP).
    response = current_app.response_class(body, status=status)
    for name, value in badge_cache.response_headers("html", max_age):
        response.headers[name] = value
    return response


@bp.get("/s/<token>")
def stall_page(token: str):
    try:
        status, headers, body = badge_cache.respond("html", token, request.headers.get("If-None-Match"))
    except badge_cache.StallGone:
        # A reissued sticker (410) says so; a token that never existed is a plain 404.
        stall = fact("voided")(token)
        void = stall is not None
        page = render_template("stall_gone.html", void=void, stall=stall)
        return _html(page, 410 if void else 404, VOID_PAGE_MAX_AGE if void else 60)
    return current_app.response_class(body, status=status, headers=headers)
