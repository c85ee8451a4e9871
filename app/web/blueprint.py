"""The web blueprint and the API docs page (packaged Swagger UI, no external assets)."""
from __future__ import annotations

from flask import Blueprint, abort, render_template, send_from_directory

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static/web")

# Only these files of the packaged Swagger UI are served.
_DOCS_ASSETS = {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"}


@bp.get("/api/v1/docs")
def api_docs():
    return render_template("docs.html")


@bp.get("/api/v1/docs/assets/<path:name>")
def api_docs_asset(name: str):
    from swagger_ui_bundle import swagger_ui_path

    if name not in _DOCS_ASSETS:
        abort(404)
    return send_from_directory(swagger_ui_path, name, max_age=86400)

