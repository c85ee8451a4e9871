"""Pages that must work outside WeChat: the API docs page and the H5 badge page. No external
assets: everything is served from this package or installed packages."""
from __future__ import annotations

from app.web import pages  # noqa: F401  the H5 pages register on bp
from app.web.blueprint import bp

__all__ = ["bp"]
