"""The HTTP layer the mini-program calls: one blueprint module per feature, all under /api/v1.

Views are thin: parse with a schema, call app/<feature>/services, dump with a schema."""
from __future__ import annotations

import importlib

# Each module defines `blp`, a flask_smorest.Blueprint; order is the order in the API docs.
FEATURE_MODULES = (
    "auth", "me", "markets", "stalls", "merchants", "credentials", "pledges",
    "orgs", "activities", "care_stations", "notifications", "stats", "audit", "jobs", "regions",
    "reports", "models", "console_login",
)


def register(api) -> None:
    for name in FEATURE_MODULES:
        module = importlib.import_module(f"miniprogram_api.{name}")
        api.register_blueprint(module.blp, url_prefix="/api/v1")  # every feature module has one
