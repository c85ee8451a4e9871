"""首页. For now who is signed in and where their roles apply; the coverage dashboard comes here."""
from __future__ import annotations

from flask import g

from app.console.blueprint import bp, render_page
from app.console.scopes import describe
from app.console.sessions import console_grants


@bp.get("/")
def home():
    scopes = [describe(grant) for grant in console_grants(g.console_user)]
    return render_page("console/home.html", nav_key="home", title="首页", scopes=scopes)
