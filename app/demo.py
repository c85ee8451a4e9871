"""The demo data set (`flask seed demo`): idempotent, so `make run` can load it every time.

Each feature contributes a `seed(ctx)` in its own `demo.py`; they run in this order and share
`ctx` (a dict of what earlier steps created)."""
from __future__ import annotations

import importlib

import click

STEPS = (
    "app.identity.demo", "app.markets.demo", "app.credentials.demo", "app.pledges.demo",
    "app.orgs.demo", "app.activities.demo", "app.reports.demo", "app.exemplars.demo",
    "app.reminders.demo",
)


STEP_LABELS = {
    "app.identity.demo": "行政区划与演示账号", "app.markets.demo": "市场、摊位与经营主体",
    "app.credentials.demo": "证照", "app.pledges.demo": "诚信承诺模板与承诺", "app.orgs.demo": "党组织与党员",
    "app.activities.demo": "组织生活、签到与暖心驿站", "app.reports.demo": "骑手随手拍", "app.exemplars.demo": "示范摊位与示范市场",
    "app.reminders.demo": "订阅与提醒",
}


def seed_demo() -> dict:
    from app.extensions import db

    import time

    ctx: dict = {}
    started = time.monotonic()
    for number, path in enumerate(STEPS, start=1):
        # A step named here must exist: a typo fails loudly instead of silently seeding less.
        module = importlib.import_module(path)
        step_started = time.monotonic()
        module.seed(ctx)
        db.session.commit()
        click.echo(f"  [{number}/{len(STEPS)}] ✓ {STEP_LABELS.get(path, path)}（{time.monotonic() - step_started:.1f} 秒）")
    click.echo(f"  共 {len(STEPS)} 步，用时 {time.monotonic() - started:.1f} 秒")
    return ctx
