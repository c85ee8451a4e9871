"""The web console (管理后台) under /console/: server-rendered pages for regulators, market
managers, branch secretaries and admins, in Simplified Chinese, with every script, style and
font served by this app (no CDN). It calls the same services and scope checks as the API.

Where things are
- blueprint.py   `bp`, `@public`, `render_page`; the request guard (session, CSRF), error pages
- sessions.py    console sessions (cookie, inactivity, revocation with the user's tokens)
- tickets.py     扫码登录 tickets (the mini-program confirms: miniprogram_api/console_login.py)
- security.py    browser-binding cookie, CSRF tokens, `next=` checks
- forms.py       `Form`: field errors in Chinese next to the field, typed values kept
- nav.py         the navigation entries and their count badges
- pages/         one module per section; templates/console/, static/ (console.css, console.js)

How to add a page
1. Write `app/console/pages/<section>.py`; define views on the shared blueprint:

       from flask import g
       from app.console.blueprint import bp, render_page

       @bp.get("/markets")
       def markets():
           page = market_services.list_markets(g.console_user, ...)   # the API's service
           return render_page("console/markets.html", nav_key="markets", title="市场与摊位", page=page)

   Views are behind the login by default (`@public` only for login pages); `g.console_user`
   is the signed-in user. Pass it to the services: they check roles and scope as for the API.
2. Add the module to PAGE_MODULES below. The navigation entry (nav.NAV) whose endpoint you
   defined becomes a link; "待办"'s badge shows what `nav.register_count("queues", fn)` counts.
3. Template: `{% extends "console/base.html" %}` and fill `{% block content %}`; forms post
   with `{{ csrf() }}` (`{% from "console/_forms.html" import csrf, field with context %}`);
   fetch() sends the `X-CSRF-Token` header (console.js: `consoleFetch`). A page's script is a
   static file (`{{ static_url('x.js') }}` in `{% block scripts %}`): no inline scripts (CSP).
4. Tests: tests/console/conftest.py has `console_login` (a browser page signed in by scanning
   with the mini-program's API) and `console_client` (a Flask test client with a session).
"""
from __future__ import annotations

import importlib

import app.console.errors  # noqa: F401  the codes exist before any request
from app.console.blueprint import bp

# Modules that define the console's views on `bp` (imported before the blueprint is registered).
PAGE_MODULES = ("app.console.pages.login", "app.console.pages.home", "app.console.pages.jobs",
                "app.console.pages.exports", "app.console.pages.audit", "app.console.pages.markets",
                "app.console.pages.queues", "app.console.pages.orgs", "app.console.pages.boards")


def register(app) -> None:
    for path in PAGE_MODULES:
        importlib.import_module(path)  # a bad path fails loudly, not a missing page
    app.register_blueprint(bp)


__all__ = ["bp", "register", "PAGE_MODULES"]
