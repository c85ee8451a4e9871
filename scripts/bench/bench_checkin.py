"""P4 and P9 benchmarks on PostgreSQL: a check-in burst, and a typical authenticated read.

500 distinct riders check in to one activity over HTTP (gunicorn, sync worker, 2 workers), each
sent many times (retries; half of the riders with an Idempotency-Key), against a bare-Flask
baseline under the same gunicorn command and the same wrk load, in the same run.

Bars (QUALITY.md P4): req/s >= 0.30 x baseline, zero 5xx, exactly 500 check-in rows, every
retry of a rider answered with the same check-in. P9: `GET /api/v1/me/points` as each of the
500 riders in turn (each rider's first read runs the token check and three reads; repeats are
answered from the worker's memory while the rider's ledger is unchanged) >= 0.35 x baseline,
with the change counters on this host and, when Redis answers, in Redis.

    .venv/bin/python -m scripts.bench.bench_checkin [--database-url postgresql+psycopg://…/xgz_bench]

The database named in --database-url (default: xgz_bench on the local server) is created if
missing and its tables are dropped and re-created: never point it at real data.
Prints a table and exits non-zero when a bar is missed.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.bench.harness import Bench, WrkResult, baseline, gunicorn, wrk  # noqa: E402

HERE = Path(__file__).resolve().parent
LUA = HERE / "bench_checkin.lua"
READS_LUA = HERE / "rotate_riders.lua"
RIDERS = 500
BAR_RATIO = 0.30
P9_RATIO = 0.35
DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/xgz_bench"
SECRET = "bench-checkin-secret-key-not-for-production"
PLACE = (23.4775, 111.3040)  # the activity's place; riders stand about 50 m away


def ensure_database(url: str) -> None:
    """CREATE DATABASE when missing (connects to the server's `postgres` database)."""
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (parsed.database,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{parsed.database}"')


def prepare(url: str, workdir: Path) -> dict:
    """Fresh schema, a rider branch with 500 station riders, one open activity; bearer tokens
    issued directly (no login round trips)."""
    os.environ.update(DATABASE_URL=url, SECRET_KEY=SECRET, INSTANCE_DIR=str(workdir), LOG_LEVEL="WARNING")
    from app import create_app
    from app.activities.models import Activity
    from app.identity.auth import issue_token
    from app.core.time import utcnow
    from app.extensions import db
    from app.identity.models import RoleGrant, User
    from app.core.regions import DEMO_REGIONS, upsert_regions
    from app.orgs.models import PartyOrg, StationRider

    app = create_app()
    with app.app_context():
        db.drop_all()
        db.create_all()
        upsert_regions(DEMO_REGIONS)
        org = PartyOrg(name="万秀区快递外卖骑手党支部", kind="branch", sector="rider", region_code="450403",
                       station="万秀区美团站", platform="美团")
        db.session.add(org)
        db.session.flush()
        now = utcnow()
        activity = Activity(org_id=org.id, type="志愿服务", title="骑手志愿服务（压测）", starts_at=now,
                            ends_at=now + timedelta(hours=2), checkin_opens_at=now - timedelta(minutes=30),
                            checkin_closes_at=now + timedelta(hours=2), lat=PLACE[0], lng=PLACE[1],
                            radius_m=500, points=10, audience="station_riders", status="scheduled")
        db.session.add(activity)
        users = [User(openid=f"bench-rider-{i:03d}", nickname=f"骑手{i:03d}", token_version=1) for i in range(RIDERS)]
        db.session.add_all(users)
        db.session.flush()
        db.session.add_all([RoleGrant(user_id=u.id, role="rider") for u in users])
        db.session.add_all([StationRider(org_id=org.id, user_id=u.id) for u in users])
        db.session.commit()
        riders_file = workdir / "riders.txt"
        riders_file.write_text("".join(f"{i} {issue_token(u)[0]}\n" for i, u in enumerate(users)))
        return {"activity_id": activity.id, "riders_file": riders_file}


def current_payload(activity_id: int) -> str:
    """Computed right before the run: a 10 s run spans at most one slot change, and the
    previous slot is still accepted."""
    from app import create_app
    from app.activities.checkin import make_payload, slot_of
    from app.core.time import utcnow

    with create_app().app_context():
        return make_payload(activity_id, slot_of(utcnow()))


def count_rows(activity_id: int) -> tuple[int, int]:
    from sqlalchemy import func, select

    from app import create_app
    from app.activities.models import CheckIn, PointsEntry
    from app.extensions import db

    with create_app().app_context():
        checkins = db.session.scalar(select(func.count()).select_from(CheckIn).where(CheckIn.activity_id == activity_id))
        points = db.session.scalar(select(func.count()).select_from(PointsEntry).where(PointsEntry.activity_id == activity_id))
        return checkins, points


def reachable_redis() -> str | None:
    import redis

    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
        return url
    except Exception:
        return None


def lua_result(result: WrkResult) -> dict:
    marker = re.search(r"BENCH_RESULT (\{.*\})", result.raw)
    return json.loads(marker.group(1)) if marker else {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--no-references", action="store_true",
                        help="skip the one-query reference run")
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        raise SystemExit("P4 runs on PostgreSQL: pass --database-url postgresql+psycopg://…")
    ensure_database(args.database_url)
    workdir = Path(tempfile.mkdtemp(prefix="xgz-bench-checkin-"))
    setup = prepare(args.database_url, workdir)
    base = baseline(args.seconds)

    app_env = {"DATABASE_URL": args.database_url, "SECRET_KEY": SECRET, "INSTANCE_DIR": str(workdir),
               "LOG_LEVEL": "WARNING"}
    references: dict[str, WrkResult] = {}
    with gunicorn("wsgi:app", env=app_env, ready_path="/healthz") as url:
        os.environ.update({"BENCH_RIDERS_FILE": str(setup["riders_file"]),
                           "BENCH_PAYLOAD": current_payload(setup["activity_id"]),
                           "BENCH_LAT": str(PLACE[0] + 0.00045), "BENCH_LNG": str(PLACE[1]), "BENCH_THREADS": "2"})
        # No warm-up: the 500 first check-ins belong to the measured run.
        burst = wrk(f"{url}/api/v1/activities/{setup['activity_id']}/checkins", seconds=args.seconds,
                    script=str(LUA), warmup=0)
        points_read = wrk(f"{url}/api/v1/me/points", seconds=args.seconds, script=str(READS_LUA))
        if not args.no_references:
            # For reading the result, not a bar: one query and no auth, on this machine.
            references["GET /readyz (1 query, no auth)"] = wrk(f"{url}/readyz", seconds=args.seconds)
    redis_url = reachable_redis()
    if redis_url:  # production shape: the change counters in Redis
        with gunicorn("wsgi:app", env={**app_env, "REDIS_URL": redis_url}, ready_path="/healthz") as url:
            points_read_redis = wrk(f"{url}/api/v1/me/points", seconds=args.seconds, script=str(READS_LUA))
    checkins, points = count_rows(setup["activity_id"])

    lua = lua_result(burst)
    statuses = {int(k): v for k, v in lua.get("statuses", {}).items()}
    five_xx = sum(v for k, v in statuses.items() if k >= 500)
    bench = Bench(f"P4 check-in burst: {RIDERS} riders, one activity, PostgreSQL")
    bench.ratio("P4", "POST /activities/{id}/checkins", burst, base, min_rps_ratio=BAR_RATIO)
    bench.ratio("P9", f"GET /api/v1/me/points, {RIDERS} riders in turn", points_read, base, min_rps_ratio=P9_RATIO)
    if redis_url:
        bench.ratio("P9", "the same, change counters in Redis", points_read_redis, base, min_rps_ratio=P9_RATIO)
    else:
        bench.add("P9", "the same, change counters in Redis", "skipped: no Redis at REDIS_URL", "—", True)
    for name, ref in references.items():
        bench.add("(ref)", name, f"{ref.rps:,.0f} req/s = {ref.rps / base.rps:.2f}× base; p99 {ref.p99_ms:.1f} ms",
                  "—", True)
    bench.add("P4", "5xx answers", str(five_xx), "0", five_xx == 0 and burst.non_2xx == 0)
    bench.add("P4", "check-in rows / points entries", f"{checkins} / {points}", f"{RIDERS} / {RIDERS}",
              checkins == RIDERS and points == RIDERS)
    bench.add("P4", "riders answered", str(lua.get("riders_answered")), str(RIDERS),
              lua.get("riders_answered") == RIDERS)
    bench.add("P4", "retries answered with another check-in", str(lua.get("mismatches")), "0",
              lua.get("mismatches") == 0 and lua.get("unparsed") == 0)
    print(f"requests {burst.requests}: 201 (first, or its idempotent replay) {statuses.get(201, 0)}, "
          f"200 (repeat) {statuses.get(200, 0)}; all statuses {dict(sorted(statuses.items()))}")
    return bench.report(base)


if __name__ == "__main__":
    sys.exit(main())
