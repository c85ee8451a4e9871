"""The badge's two renderings, stored side by side in the projection: the JSON the mini-program
reads and the H5 page a phone camera opens."""
from __future__ import annotations

import json
from typing import Any

from flask import current_app, render_template

from app.badge.compute import public_json


def render_json(badge: dict[str, Any]) -> bytes:
    return json.dumps(public_json(badge), ensure_ascii=False, separators=(",", ":")).encode()


def render_html(badge: dict[str, Any]) -> bytes:
    # Photo links relative to this page's host, so the page works under any host name.
    base = len(current_app.config["PUBLIC_BASE_URL"])
    return render_template("badge.html", badge=public_json(badge), base=base).encode()
