"""The demo data set (`flask seed demo`): idempotent, so `make run` can load it every time.

Each feature contributes a `seed(ctx)` in its own `demo.py`; they run in this order and share
`ctx` (a dict of what earlier steps created)."""
from __future__ import annotations

import importlib

import click

STEPS = (
    "app.identity.demo", "app.markets.demo", "app.credentials.demo", "app.pledges.demo",
    "app.orgs.demo", "app.activities.demo", "app.reminders.demo",
)


def seed_demo() -> dict:
    from app.extensions import db

    ctx: dict = {}
    for path in STEPS:
        # A step named here must exist: a typo fails loudly instead of silently seeding less.
        module = importlib.import_module(path)
        module.seed(ctx)
        db.session.commit()
        click.echo(f"  ✓ {path.split('.')[1]}")
    return ctx
