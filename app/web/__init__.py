"""The API docs page (packaged Swagger UI): no external assets, everything is served from this
package or installed packages. The H5 badge page lives with the badge (app/badge/page.py)."""
from __future__ import annotations

from app.web.blueprint import bp

__all__ = ["bp"]
