"""P7: the licence/permit expiry sweep over 100,000 credentials, ~3% due within 30 days.

    .venv/bin/python -m scripts.bench.bench_reminders [--credentials 100000] [--due-share 0.03]
                                                      [--dispatch-rows 6000]

On PostgreSQL it also measures dispatch to the WeChat simulator (issue 14: >= 500 messages/s):
`--dispatch-rows` pending reminders to as many owners, sent by 1 and then 2 dispatcher
processes through bench_province's measurement (`--dispatch-rows 0` skips it).

Runs against DATABASE_URL (PostgreSQL: in a scratch schema dropped afterwards); without it, a
scratch SQLite file (never the development database). Seeds with bulk inserts, times the sweep
(goal: due rows in the outbox in <= 10 s), runs it again (goal: adds 0), prints a table and
exits non-zero when a bar is missed."""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

GOAL_SECONDS = 10.0
DISPATCH_GOAL = 500.0  # messages per second to the WeChat simulator (issue 14)
KINDS = ("business_licence", "food_business", "tobacco_retail", "measuring_instrument")
CHUNK = 10_000


def _app(scratch: Path):
    from sqlalchemy import create_engine, text

    from app import create_app
    from config import Config

    os.environ.setdefault("INSTANCE_DIR", str(scratch))
    config = Config()
    url = os.environ.get("DATABASE_URL")
    schema = None
    if url and url.startswith("postgresql"):
        schema = f"bench_reminders_{os.getpid()}"
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
        config.SQLALCHEMY_DATABASE_URI = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    else:
        config.SQLALCHEMY_DATABASE_URI = f"sqlite:///{scratch / 'bench_reminders.db'}"
    config.REDIS_URL = None
    config.LOG_LEVEL = "WARNING"
    return create_app(config), url, schema


def _drop_schema(url: str, schema: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def _bulk(db, table, rows: list[dict]) -> None:
    for start in range(0, len(rows), CHUNK):
        db.session.execute(table.insert(), rows[start:start + CHUNK])
    db.session.commit()


def seed(db, credentials: int, due_share: float, today: date) -> dict:
    """Entities with four documents each (one per kind, so none replaces another); `due_share`
    of the documents expire within 30 days, a few of those today (the manager is told too)."""
    from app.credentials.models import Credential
    from app.identity.models import RoleGrant, User
    from app.markets.models import Market, Merchant, Stall
    from app.core.regions import DEMO_REGIONS, upsert_regions

    rng = random.Random(7)
    upsert_regions(DEMO_REGIONS)
    market = Market(name="压测综合市场", region_code="450403", kind="综合市场")
    manager = User(openid="bench-manager")
    db.session.add_all([market, manager])
    db.session.commit()
    db.session.add(RoleGrant(user_id=manager.id, role="market_manager", scope_type="market",
                             scope_id=str(market.id)))
    db.session.commit()

    entities = -(-credentials // len(KINDS))
    _bulk(db, User.__table__, [{"openid": f"bench-owner-{i}", "token_version": 1} for i in range(entities)])
    first_user = db.session.query(User.id).filter_by(openid="bench-owner-0").scalar()
    _bulk(db, Merchant.__table__, [
        {"owner_id": first_user + i, "name": f"压测经营户{i}", "kind": "个体工商户",
         "uscc": f"92450403MA{i:08d}", "operator_name": "压测"} for i in range(entities)])
    first_merchant = db.session.query(Merchant.id).filter_by(name="压测经营户0").scalar()
    _bulk(db, Stall.__table__, [
        {"market_id": market.id, "number": f"B-{i:06d}", "token": f"bench{i:010d}",
         "merchant_id": first_merchant + i, "badge_version": 1} for i in range(entities)])

    due = round(credentials * due_share)
    due_today = max(1, due // 30)
    due_indexes = set(rng.sample(range(credentials), due))
    today_indexes = set(rng.sample(sorted(due_indexes), due_today))
    rows = []
    for i in range(credentials):
        if i in today_indexes:
            until, long_term = today, False
        elif i in due_indexes:
            until, long_term = today + timedelta(days=rng.randint(1, 30)), False
        elif rng.random() < 0.2:
            until, long_term = None, True
        else:
            until, long_term = today + timedelta(days=rng.randint(31, 1800)), False
        rows.append({"merchant_id": first_merchant + i // len(KINDS), "kind": KINDS[i % len(KINDS)],
                     "number": f"N{i:012d}", "issuer": "梧州市万秀区市场监督管理局", "valid_until": until,
                     "long_term": long_term, "photo_key": f"bench-photo-{i}", "status": "verified",
                     "submitted_by_id": first_user + i // len(KINDS)})
    _bulk(db, Credential.__table__, rows)
    return {"credentials": credentials, "due": due, "due_today": due_today}


def measure_dispatch(db, url: str, scratch: Path, rows: int, now) -> tuple[dict, dict]:
    """Dispatch to the simulator, 1 process then 2 (bench_province's measurement: one consent per
    owner, a common start, messages per second over the wall time). Each run gets fresh rows:
    1.5 x `rows` pending reminders are seeded, to as many owners, all due now."""
    from types import SimpleNamespace

    from sqlalchemy import text

    from app.identity.models import User
    from app.reminders.models import Notification
    from scripts.bench.bench_province import dispatch

    total = rows + rows // 2
    db.session.query(Notification).delete()
    _bulk(db, User.__table__, [{"openid": f"bench-dispatch-{i}", "token_version": 1} for i in range(total)])
    first = db.session.query(User.id).filter_by(openid="bench-dispatch-0").scalar()
    _bulk(db, Notification.__table__, [
        {"user_id": first + i, "kind": "credential_expiry", "subject": f"credential:{i}", "period": "bench:d7",
         "template_key": "credential_expiry", "title": "证照即将到期", "body": "您的食品经营许可证将于 30 天内到期，请及时办理延续。",
         "page": "pages/credentials/detail?id=1", "wx_data": {"thing1": "食品经营许可证", "time2": "2026年03月31日"},
         "channel": "wechat", "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
        for i in range(total)])
    db.session.execute(text("ANALYZE notifications"))
    db.session.commit()
    shape = SimpleNamespace(url=url)
    one = dispatch(shape, str(scratch), rows // 2, 1)
    two = dispatch(shape, str(scratch), rows, 2)
    return one, two


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--credentials", type=int, default=100_000)
    parser.add_argument("--due-share", type=float, default=0.03)
    parser.add_argument("--dispatch-rows", type=int, default=6000,
                        help="reminders for the dispatch measurement (PostgreSQL only; 0 skips it)")
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="bench-reminders-"))
    app, url, schema = _app(scratch)
    try:
        with app.app_context():
            from app.core.time import local_midnight_utc, local_today
            from app.extensions import db
            from app.credentials.reminders import credential_expiry
            from app.reminders.models import Notification

            db.create_all()
            now = local_midnight_utc(local_today()) + timedelta(hours=1)  # 09:00 Asia/Shanghai
            today = local_today(now)
            started = time.perf_counter()
            seeded = seed(db, args.credentials, args.due_share, today)
            seed_seconds = time.perf_counter() - started

            started = time.perf_counter()
            first = credential_expiry(now)
            first_seconds = time.perf_counter() - started
            started = time.perf_counter()
            second = credential_expiry(now)
            second_seconds = time.perf_counter() - started
            outbox = db.session.query(Notification).count()
            engine = db.engine.dialect.name
            dispatched = None
            if engine == "postgresql" and args.dispatch_rows > 0:
                dispatched = measure_dispatch(db, app.config["SQLALCHEMY_DATABASE_URI"], scratch, args.dispatch_rows, now)
    finally:
        if schema:
            _drop_schema(url, schema)

    expected = seeded["due"] + seeded["due_today"]  # owners, plus the manager for those due today
    checks = [
        ("first sweep time", f"{first_seconds:.2f} s", f"<= {GOAL_SECONDS:.0f} s", first_seconds <= GOAL_SECONDS),
        ("rows added by first sweep", str(first["added"]), f"= {expected}", first["added"] == expected),
        ("rows added by second sweep", str(second["added"]), "= 0", second["added"] == 0),
        ("outbox rows", str(outbox), f"= {expected}", outbox == expected),
    ]
    if dispatched is not None:
        one, two = dispatched
        best = max(one["rate"], two["rate"])
        checks.append(("dispatch msg/s, 1 / 2 procs", f"{one['rate']:,.0f} / {two['rate']:,.0f}",
                       f">= {DISPATCH_GOAL:g}", best >= DISPATCH_GOAL and one["failed"] + two["failed"] == 0))
    print(f"P7 reminder sweep on {engine}: {seeded['credentials']:,} credentials, {seeded['due']:,} due "
          f"within 30 days ({seeded['due_today']} today); seeded in {seed_seconds:.1f} s; "
          f"second sweep {second_seconds:.2f} s")
    print(f"{'measure':<28} {'value':>12}  {'goal':<10} result")
    for name, value, goal, ok in checks:
        print(f"{name:<28} {value:>12}  {goal:<10} {'ok' if ok else 'MISSED'}")
    from scripts.bench.harness import Bench

    recorded = Bench("P7")  # for make bench's side-by-side table
    for name, value, goal, ok in checks:
        recorded.add("P7", f"reminder sweep, {name}", value, goal, ok)
    recorded._record()
    return 0 if all(ok for *_, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
