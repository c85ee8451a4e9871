"""The web blueprint and the API docs page (packaged Swagger UI, no external assets)."""
from __future__ import annotations

from flask import Blueprint, abort, render_template, send_from_directory

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static/web")

# Only these files of the packaged Swagger UI are served.
_DOCS_ASSETS = {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"}


@bp.get("/<name>.txt")
def wechat_domain_verification(name: str):
    """The verification file WeChat asks for before stickers' plain-URL QR codes may open the
    mini-program (its name and content are settings); any other .txt is not here."""
    from flask import Response, current_app

    expected = current_app.config.get("WECHAT_DOMAIN_VERIFY_FILE")
    if not expected or f"{name}.txt" != expected:
        abort(404)
    response = Response(current_app.config["WECHAT_DOMAIN_VERIFY_CONTENT"], mimetype="text/plain")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/api/v1/docs")
def api_docs():
    return render_template("docs.html")


@bp.get("/api/v1/docs/errors")
def error_codes():
    from app.core.errors import CODES

    return render_template("error_codes.html", codes=sorted(CODES.items()))


@bp.get("/api/v1/docs/assets/<path:name>")
def api_docs_asset(name: str):
    from swagger_ui_bundle import swagger_ui_path

    if name not in _DOCS_ASSETS:
        abort(404)
    return send_from_directory(swagger_ui_path, name, max_age=86400)

