"""P4 benchmark: a check-in burst on PostgreSQL.

500 distinct riders check in to one activity over HTTP (gunicorn, sync worker, 2 workers), each
sent many times (retries; half of the riders with an Idempotency-Key), against a bare-Flask
baseline under the same gunicorn command and the same wrk load, in the same run.

Bars (QUALITY.md P4): req/s >= 0.30 x baseline, zero 5xx, exactly 500 check-in rows, every
retry of a rider answered with the same check-in.

    .venv/bin/python scripts/bench/bench_checkin.py [--database-url postgresql+psycopg://…/xgz_bench]

The database named in --database-url (default: xgz_bench on the local server) is created if
missing and its tables are dropped and re-created: never point it at real data.
Prints a table and exits non-zero when a bar is missed.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
LUA = HERE / "bench_checkin.lua"
RIDERS = 500
BAR_RATIO = 0.30
DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/xgz_bench"
SECRET = "bench-checkin-secret-key-not-for-production"
PLACE = (23.4775, 111.3040)  # the activity's place; riders stand about 50 m away

BARE_APP = '''
from flask import Flask, jsonify
app = Flask(__name__)

@app.get("/")
def ok():
    return jsonify(ok=True)
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    from app.core.auth import issue_token
    from app.core.time import utcnow
    from app.extensions import db
    from app.identity.models import RoleGrant, User
    from app.markets.regions import DEMO_REGIONS, upsert_regions
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


class Gunicorn:
    """gunicorn, sync worker, 2 workers, bound to 127.0.0.1 — the same command for both apps."""

    def __init__(self, app_path: str, chdir: Path, env: dict | None = None) -> None:
        self.port = free_port()
        command = [str(ROOT / ".venv/bin/gunicorn"), "-k", "sync", "-w", "2", "-b", f"127.0.0.1:{self.port}",
                   "--chdir", str(chdir), "--log-level", "warning", app_path]
        self.process = subprocess.Popen(command, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)

    def __enter__(self) -> "Gunicorn":
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                for _ in range(20):  # each worker answers once at least
                    urllib.request.urlopen(f"http://127.0.0.1:{self.port}{self.probe}", timeout=2).read()
                return self
            except Exception:
                if self.process.poll() is not None:
                    raise SystemExit(self.process.stderr.read().decode()[-2000:])
                time.sleep(0.2)
        raise SystemExit("gunicorn did not start")

    probe = "/"

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def wrk(url: str, seconds: int, lua: Path | None = None, env: dict | None = None) -> dict:
    command = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency"]
    if lua:
        command += ["-s", str(lua)]
    result = subprocess.run(command + [url], capture_output=True, text=True, env={**os.environ, **(env or {})},
                            timeout=seconds + 60)
    out = result.stdout
    if result.returncode != 0:
        raise SystemExit(f"wrk failed: {result.stderr or out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = _latency_ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    parsed = {"rps": rps, "p99_ms": p99, "non2xx": int(non2xx.group(1)) if non2xx else 0,
              "socket_errors": errors.group(0) if errors else None}
    marker = re.search(r"BENCH_RESULT (\{.*\})", out)
    if marker:
        parsed["lua"] = json.loads(marker.group(1))
    return parsed


def _latency_ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--no-references", action="store_true",
                        help="skip the reference runs (one-query and authenticated-read endpoints)")
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        raise SystemExit("P4 runs on PostgreSQL: pass --database-url postgresql+psycopg://…")
    sys.path.insert(0, str(ROOT))
    ensure_database(args.database_url)
    workdir = Path(tempfile.mkdtemp(prefix="xgz-bench-checkin-"))
    (workdir / "bare.py").write_text(BARE_APP)
    setup = prepare(args.database_url, workdir)

    with Gunicorn("bare:app", workdir) as bare:
        baseline = wrk(f"http://127.0.0.1:{bare.port}/", args.seconds)

    app_env = {"DATABASE_URL": args.database_url, "SECRET_KEY": SECRET, "INSTANCE_DIR": str(workdir),
               "LOG_LEVEL": "WARNING"}
    server = Gunicorn("wsgi:app", ROOT, app_env)
    server.probe = "/healthz"
    with server:
        payload = current_payload(setup["activity_id"])
        lua_env = {"BENCH_RIDERS_FILE": str(setup["riders_file"]), "BENCH_PAYLOAD": payload,
                   "BENCH_LAT": str(PLACE[0] + 0.00045), "BENCH_LNG": str(PLACE[1]), "BENCH_THREADS": "2"}
        burst = wrk(f"http://127.0.0.1:{server.port}/api/v1/activities/{setup['activity_id']}/checkins",
                    args.seconds, LUA, lua_env)
        # For reading the result, not bars: what one query, and an authenticated read, cost here.
        references = {}
        if not args.no_references:
            token_lua = workdir / "token.lua"
            token = setup["riders_file"].read_text().split("\n", 1)[0].split(" ", 1)[1]
            token_lua.write_text(f'wrk.headers["Authorization"] = "Bearer {token}"\n')
            references["GET /readyz (1 query)"] = wrk(f"http://127.0.0.1:{server.port}/readyz", args.seconds)
            references["GET /api/v1/me/points (auth)"] = wrk(
                f"http://127.0.0.1:{server.port}/api/v1/me/points", args.seconds, token_lua)
    checkins, points = count_rows(setup["activity_id"])

    lua = burst.get("lua", {})
    statuses = {int(k): v for k, v in lua.get("statuses", {}).items()}
    five_xx = sum(v for k, v in statuses.items() if k >= 500)
    ratio = burst["rps"] / baseline["rps"] if baseline["rps"] else 0.0
    checks = [
        ("req/s vs baseline", f"{ratio:.2f}×", f"≥ {BAR_RATIO:.2f}×", ratio >= BAR_RATIO),
        ("5xx answers", str(five_xx), "0", five_xx == 0),
        ("non-2xx answers", str(burst["non2xx"]), "0", burst["non2xx"] == 0),
        ("check-in rows", str(checkins), str(RIDERS), checkins == RIDERS),
        ("points entries", str(points), str(RIDERS), points == RIDERS),
        ("riders answered", str(lua.get("riders_answered")), str(RIDERS), lua.get("riders_answered") == RIDERS),
        ("retries answered differently", str(lua.get("mismatches")), "0", lua.get("mismatches") == 0),
        ("unparsable bodies", str(lua.get("unparsed")), "0", lua.get("unparsed") == 0),
    ]
    print()
    print(f"P4 check-in burst — gunicorn sync ×2, wrk -t2 -c32 -d{args.seconds}s, PostgreSQL")
    print(f"{'run':<40}{'req/s':>10}{'p99 ms':>10}")
    print(f"{'bare Flask baseline':<40}{baseline['rps']:>10.0f}{baseline['p99_ms']:>10.2f}")
    print(f"{'POST …/checkins':<40}{burst['rps']:>10.0f}{burst['p99_ms']:>10.2f}")
    for name, ref in references.items():
        print(f"{'(ref) ' + name:<40}{ref['rps']:>10.0f}{ref['p99_ms']:>10.2f}")
    print(f"requests {lua.get('requests')} (first check-ins {statuses.get(201, 0)} incl. idempotent replays, "
          f"repeats {statuses.get(200, 0)}); statuses {dict(sorted(statuses.items()))}")
    print()
    print(f"{'check':<32}{'value':>10}{'bar':>10}  ok")
    for name, value, bar, ok in checks:
        print(f"{name:<32}{value:>10}{bar:>10}  {'✓' if ok else '✗'}")
    return 0 if all(ok for *_, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
