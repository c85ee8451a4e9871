"""Application factory: reads like a table of contents."""
from __future__ import annotations

from flask import Flask
from flask.sessions import SessionInterface

from app.core import messages_zh

messages_zh.install()  # before any schema class exists: marshmallow copies messages into each field


def create_app(config: object | None = None) -> Flask:
    from config import Config

    app = Flask(__name__, instance_path=None)
    app.config.from_object(config or Config())
    from app.core.http import install_request_parsing

    install_request_parsing(app)
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    # Bearer tokens, never cookies: no cookie session to sign and read on every request.
    app.session_interface = NoCookieSession()

    from app.core.logging import configure_logging
    configure_logging(app.config["LOG_LEVEL"], app.config.get("LOG_FORMAT", "text"))

    if app.config["PROXY_COUNT"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["PROXY_COUNT"],
                                x_proto=app.config["PROXY_COUNT"], x_host=app.config["PROXY_COUNT"])
    register_extensions(app)
    register_caches(app)
    register_http(app)
    register_blueprints(app)
    register_observability(app)
    register_cli(app)
    register_middleware(app)
    return app


def register_observability(app: Flask) -> None:
    """/metrics, and what features add to it and to /readyz (core never imports them)."""
    from app.core import metrics
    from app.reminders import observability as reminders_observability

    metrics.install(app)
    reminders_observability.install()


def register_caches(app: Flask) -> None:
    from app.core import caches, generations

    caches.install(app)
    generations.install(app)  # change counters shared by the workers (after kv: Redis when configured)
    from app.stats import rollups

    rollups.install()  # coverage roll-ups recounted in the writer's transaction (observes through generations)


def register_middleware(app: Flask) -> None:
    """WSGI layers, innermost first. The badge fast path answers warm badge reads before
    Flask's request machinery (app/markets/badge_fastpath.py); the response frame goes last,
    outermost, so its headers reach every response, the fast path's included."""
    from app.core import frame
    from app.badge import fastpath as badge_fastpath

    from app.exemplars import market_page

    badge_fastpath.install(app)
    market_page.install(app)  # /m/<token>, the market's public page, the same way
    frame.install(app)


class NoCookieSession(SessionInterface):
    def open_session(self, app, request):
        return None  # Flask substitutes a NullSession, which refuses writes loudly

    def save_session(self, app, session, response) -> None:
        return None


def register_extensions(app: Flask) -> None:
    from app import models  # noqa: F401  every table known to metadata and Alembic
    from app.extensions import api, db, kv, migrate

    from app.core import transactions

    transactions.configure(app)  # read-only requests' autocommit engine (PostgreSQL)
    db.init_app(app)
    from app.core import content
    from app.wechat.client import ensure_text_safe

    content.install(ensure_text_safe)  # public text is content-checked before any flush (R12)
    migrate.init_app(app, db, directory=str(_project_dir() / "migrations"), render_as_batch=True,
                     compare_type=True)
    kv.init_app(app)
    from miniprogram_api.common import ErrorSchema

    api.ERROR_SCHEMA = ErrorSchema  # every error response documented as {"error": {code, message, details}}
    api.init_app(app)


def register_http(app: Flask) -> None:
    from app.core.http import init_http, install_url_converters
    from app.identity.auth import enforce_route_auth

    install_url_converters(app)
    init_http(app, authenticate=enforce_route_auth)


def register_blueprints(app: Flask) -> None:
    import miniprogram_api
    from app import console
    from app.core.health import bp as health_bp
    from app.extensions import api
    from app.badge.page import bp as badge_page_bp
    from app.web import bp as web_bp

    from miniprogram_api.common import document_text_rule
    from miniprogram_api.labels import document_enum_labels

    api.ma_plugin.converter.add_attribute_function(document_text_rule)
    api.ma_plugin.converter.add_attribute_function(document_enum_labels)
    miniprogram_api.register(api)
    app.register_blueprint(health_bp)
    app.register_blueprint(web_bp)
    app.register_blueprint(badge_page_bp)
    console.register(app)  # the web console under /console/ (app/console)
    from app.exemplars.market_page import bp as market_page_bp

    app.register_blueprint(market_page_bp)
    document_error_codes(api)


def document_error_codes(api) -> None:
    """Every error code with its status and message in the OpenAPI document (`x-error-codes`),
    so the front end reads the one current table (features register theirs when their
    blueprints import); people read it at /api/v1/docs/errors, linked from the description,
    not above the endpoints where it pushed 'Authorize' thousands of pixels down."""
    from app.core.errors import CODES

    api.spec.options["x-error-codes"] = [{"code": code, "status": status, "message": message}
                                         for code, (status, message) in sorted(CODES.items())]
    info = api.spec.options.setdefault("info", {})
    base = info.get("description", "").split("\n\n## 错误码")[0]
    info["description"] = (f"{base}\n\n## 错误码\n\n全部 {len(CODES)} 个错误码、HTTP 状态与中文提示见"
                           f" [错误码一览](/api/v1/docs/errors)（机器可读：本文档的 `x-error-codes`）。\n")


def register_cli(app: Flask) -> None:
    from app.cli import register

    register(app)


def _project_dir():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent
