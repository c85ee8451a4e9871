"""Speed bar of the market's public page (QUALITY.md P11): `GET /m/{token}` warm ≥ 0.80 × the
bare-Flask baseline, started by this script under the same gunicorn and wrk commands.

    .venv/bin/python -m scripts.bench.bench_market_page                 # SQLite file database
    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench \\
        .venv/bin/python -m scripts.bench.bench_market_page             # PostgreSQL (+ REDIS_URL)

Seeds one market of 120 stalls, 100 of them held by entities with a verified licence and food
permit, with their badges stored (as `flask badge rebuild` does after a bulk import), one of them
a 示范摊位 and the market a 示范市场 (so the page shows titles), then loads the first page."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

from scripts.bench.bench_badge import _app, app_env, seed
from scripts.bench.harness import Bench, baseline, gunicorn, wrk

STALLS, HELD = 120, 100


def market_with_titles(db_url: str, instance: str) -> str:
    """The seeded market's public token, after a 示范摊位 and the 示范市场 are on record."""
    from datetime import timedelta

    from sqlalchemy import insert, select

    from app.core.time import local_midnight_utc, local_today, utcnow
    from app.exemplars.criteria import DEFAULTS
    from app.exemplars.models import ExemplarTitle
    from app.extensions import db
    from app.identity.models import User
    from app.markets.models import Market, Stall

    app = _app(db_url, instance)
    with app.app_context():
        market = db.session.scalar(select(Market))
        stall = db.session.scalar(select(Stall).where(Stall.merchant_id.isnot(None)).order_by(Stall.id))
        user = db.session.scalar(select(User.id))
        now = utcnow()
        ends = local_midnight_utc(local_today(now) + timedelta(days=365))
        common = {"region_code": market.region_code, "market_id": market.id, "conferred_at": now, "ends_at": ends,
                  "conferred_by_id": user, "criteria": DEFAULTS.snapshot(), "created_at": now, "updated_at": now}
        db.session.execute(insert(ExemplarTitle), [
            {**common, "kind": "stall", "title": "示范摊位", "stall_id": stall.id, "merchant_id": stall.merchant_id,
             "citation": "亮照亮证齐全，诚信经营", "active_key": f"stall:{stall.id}"},
            {**common, "kind": "market", "title": "示范市场", "citation": "放心市场建设先进",
             "active_key": f"market:{market.id}"}])
        db.session.commit()
        from app.badge.cache import rebuild

        rebuild([stall.token])
        token = market.token
        db.engine.dispose()
    return token


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    bench = Bench("market public page")
    with tempfile.TemporaryDirectory(prefix="bench-market-") as tmp:
        db_url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp}/market.db"
        seed(db_url, tmp, STALLS, held=HELD, build_badges=STALLS)
        token = market_with_titles(db_url, tmp)
        base = baseline(args.seconds)
        with gunicorn("wsgi:app", env=app_env(db_url, tmp), ready_path=f"/m/{token}") as url:
            import urllib.request

            with urllib.request.urlopen(f"{url}/m/{token}") as response:
                page = response.read().decode()
            assert "示范市场" in page and "放心摊位" in page, page[:500]
            result = wrk(f"{url}/m/{token}", args.seconds)
        bench.ratio("P11", f"market page /m/{{token}}, warm ({HELD} stalls in business, {len(page) // 1024} KB)",
                    result, base, 0.80)
    return bench.report(base)


if __name__ == "__main__":
    sys.exit(main())
