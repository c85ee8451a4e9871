"""A province on PostgreSQL (QUALITY.md P10, P12; issue 14): seed ~10 million rows with COPY and
measure what grows with the province against a baseline seeded in the same run.

    .venv/bin/python -m scripts.bench.bench_province            # `make bench-province`: ~45 min on 2 cores
                                                                # (33 of them building the roll-ups)
    .venv/bin/python -m scripts.bench.bench_province --scale 0.05 --keep   # a quick try

Databases (each dropped and re-created, schema by `flask db upgrade`, regions by `flask regions
import --builtin`; never point BENCH_PG_SERVER at real data):

    xgz_province         广西 (45): 20,000 markets over its 111 counties, 2,000,000 stalls (70 %
                         held), ~1.06 M entities, 2,000,000 licences and permits, pledges, stall
                         claims, 100,000 riders, party organisations and members; its county
                         万秀区 (450403) holds exactly 10,000 stalls in 100 markets
    xgz_province_county  万秀区 alone: the same generator, 10,000 stalls (the P10 reference)
    xgz_province_100k    1/20 of the province: 100,000 stalls and 100,000 credentials (P12 reference)
    xgz_province_1k      1,000 stalls (the badge-miss reference)

Bars: P10 overview province vs county (≤ 1.5×); badge miss province vs 1,000 stalls (≤ 1.2×);
P12 the credential-expiry sweep over 2,000,000 credentials vs 100,000 (≤ 25×), its rerun adds
nothing and costs ≤ 1.5× its due query; dispatch to the WeChat simulator (≥ 500 messages/s).
Prints the database size and its largest tables. Exits non-zero when a bar is missed."""
from __future__ import annotations

import argparse
import base64
import contextlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.bench.harness import ROOT, Bench, free_port, python_bin  # noqa: E402

SERVER = os.environ.get("BENCH_PG_SERVER", "postgresql+psycopg://postgres@127.0.0.1:5432")
PROVINCE, REFERENCE_COUNTY = "450000", "450403"
SECRET = "bench-province-secret"
CLAIMED_SHARE = 0.70
# An entity holds 1, 2 or 3 neighbouring stalls (75/18/7 %), cut short by an empty stall: on
# average 1 + 0.25 × 0.7 + 0.07 × 0.49 = 1.209 stalls per entity.
RUN_MEAN = 1.209
OVERVIEW_GOAL, MISS_GOAL, SWEEP_GOAL, RERUN_GOAL, DISPATCH_GOAL = 1.5, 1.2, 25.0, 1.5, 500.0
PERMIT_KINDS = (("food_business", 60), ("tobacco_retail", 15), ("small_food_workshop", 8),
                ("measuring_instrument", 8), ("drug_business", 5), ("food_production", 4))
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GOODS = ("水果", "蔬菜", "鲜肉", "水产", "干货", "粮油", "熟食", "调味", "禽蛋", "豆制品", "米粉", "茶叶", "百货", "服装")
PLATFORMS = ("美团", "饿了么", "顺丰同城", "京东物流")
PLEDGE_ITEMS = '["亮照经营，证照齐全有效","明码标价，不缺斤短两","不销售假冒伪劣商品","文明经营，诚信待客"]'


@dataclass
class Shape:
    """What to seed: `markets` with `stalls` in all, spread over `counties` (a province's or one
    county); `reference` puts exactly `ref_stalls` stalls in `ref_markets` markets of that county."""
    name: str
    database: str
    markets: int
    stalls: int
    riders: int
    counties: list[str]
    reference: str | None = None
    ref_markets: int = 0
    ref_stalls: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{SERVER}/{self.database}"


def counties_of(province: str) -> list[str]:
    from app.core.regions import builtin_regions, region_level

    return sorted(code for code, _ in builtin_regions()
                  if code[:2] == province[:2] and region_level(code) == 3 and not code.endswith("00"))


def shapes(scale: float) -> dict[str, Shape]:
    counties = counties_of(PROVINCE)
    big = Shape("province", "xgz_province", round(20_000 * scale), round(2_000_000 * scale),
                round(100_000 * scale), counties, REFERENCE_COUNTY, 100, 10_000)
    return {
        "province": big,
        "county": Shape("county", "xgz_province_county", 100, 10_000, 500, [REFERENCE_COUNTY]),
        "twentieth": Shape("twentieth", "xgz_province_100k", round(big.markets / 20), round(big.stalls / 20),
                           round(big.riders / 20), counties),
        "small": Shape("small", "xgz_province_1k", 10, 1_000, 50, [REFERENCE_COUNTY]),
    }


# -- databases ------------------------------------------------------------------------------------

def psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def recreate_database(name: str) -> None:
    import psycopg

    with psycopg.connect(psycopg_url(f"{SERVER}/postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(psycopg_url(f"{SERVER}/postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def flask(url: str, instance: str, *args: str) -> None:
    env = {**os.environ, "DATABASE_URL": url, "INSTANCE_DIR": instance, "SECRET_KEY": SECRET, "LOG_LEVEL": "WARNING"}
    env.pop("REDIS_URL", None)
    subprocess.run([str(Path(python_bin()).with_name("flask")), "--app", "wsgi", *args], cwd=ROOT, env=env,
                   check=True, stdout=subprocess.DEVNULL)


# -- the generator ----------------------------------------------------------------------------------

class Streams:
    """One COPY … FROM STDIN per table, each on its own connection, open side by side so one pass
    over the world writes every table. Foreign-key triggers are off while loading
    (session_replication_role = replica): the generator keeps the references right, and the
    checks would double the load time."""

    BUFFER = 20_000

    def __init__(self, url: str):
        self.url = psycopg_url(url)
        self.stack = contextlib.ExitStack()
        self.copies: dict[str, tuple] = {}
        self.buffers: dict[str, list[str]] = {}
        self.rows: dict[str, int] = {}

    def open(self, table: str, columns: str) -> None:
        import psycopg

        conn = self.stack.enter_context(psycopg.connect(self.url))
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET synchronous_commit = off")
        cursor = self.stack.enter_context(conn.cursor())
        copy = self.stack.enter_context(cursor.copy(f"COPY {table} ({columns}) FROM STDIN"))
        self.copies[table] = (conn, copy)
        self.buffers[table] = []
        self.rows[table] = 0

    def add(self, table: str, line: str) -> None:
        buffer = self.buffers[table]
        buffer.append(line)
        if len(buffer) >= self.BUFFER:
            self.flush(table)

    def flush(self, table: str) -> None:
        buffer = self.buffers[table]
        if buffer:
            self.copies[table][1].write("\n".join(buffer) + "\n")
            self.rows[table] += len(buffer)
            buffer.clear()

    def close(self) -> dict[str, int]:
        for table in self.copies:
            self.flush(table)
        self.stack.close()  # ends each COPY and commits its connection
        return dict(self.rows)


COLUMNS = {
    "users": "id, openid, nickname, token_version, show_name, created_at, updated_at",
    "role_grants": "user_id, role, scope_type, scope_id, granted_at",
    "markets": "id, name, region_code, kind, token, created_at, updated_at",
    "merchants": "id, owner_id, name, kind, uscc, operator_name, created_at, updated_at",
    "stalls": "id, market_id, number, token, merchant_id, badge_version, token_issued_at, created_at, updated_at",
    "stall_claims": "stall_id, merchant_id, active_stall_id, status, requested_by_id, reviewed_by_id, reviewed_at, "
                    "created_at, updated_at",
    "credentials": "id, merchant_id, kind, number, issuer, valid_from, valid_until, long_term, photo_key, status, "
                   "submitted_by_id, reviewed_by_id, reviewed_at, review_reason, created_at, updated_at",
    "pledge_templates": "id, family_id, version, title, items, term_months, region_code, active, created_at, updated_at",
    "pledges": "merchant_id, market_id, template_id, template_version, title, items, term_months, signer_name, "
               "signed_by_id, status, reviewed_at, reviewed_by_id, review_reason, valid_from, valid_until, "
               "created_at, updated_at",
    "party_orgs": "id, name, kind, sector, region_code, parent_id, market_id, station, platform, join_code, "
                  "created_at, updated_at",
    "party_memberships": "org_id, user_id, standing, floating, home_org_name, status, reviewed_by_id, reviewed_at, "
                         "created_at, updated_at",
    "station_riders": "org_id, user_id, joined_at",
}
N = "\\N"


def split(total: int, parts: int, rng: random.Random, spread: float = 0.7) -> list[int]:
    """`parts` sizes around total/parts (± spread) that add up to `total` exactly."""
    if parts <= 0:
        return []
    weights = [rng.uniform(1 - spread, 1 + spread) for _ in range(parts)]
    scale = total / sum(weights)
    sizes = [max(1, int(w * scale)) for w in weights]
    for i in range(total - sum(sizes)):
        sizes[i % parts] += 1
    while sum(sizes) > total:
        sizes[sizes.index(max(sizes))] -= 1
    return sizes


class World:
    """Generates one shape, table by table through `Streams`; ids are assigned here."""

    def __init__(self, shape: Shape, streams: Streams, today: date, now: datetime, seed: int = 7):
        from app.core.regions import builtin_regions

        self.shape, self.s, self.today, self.rng = shape, streams, today, random.Random(seed)
        self.ts = now.strftime("%Y-%m-%d %H:%M:%S")
        self.names = dict(builtin_regions())
        self.ids = {"users": 0, "markets": 0, "merchants": 0, "stalls": 0, "credentials": 0, "party_orgs": 0}
        self.tokens: list[str] = []  # a sample of stall tokens, for the badge bar
        self.token_sample = max(1, shape.stalls // 20_000)
        self.regulators: dict[str, int] = {}

    def next_id(self, table: str) -> int:
        self.ids[table] += 1
        return self.ids[table]

    def user(self, prefix: str, nickname: str | None = None) -> int:
        uid = self.next_id("users")
        self.s.add("users", f"{uid}\t{prefix}-{uid}\t{nickname or N}\t1\tf\t{self.ts}\t{self.ts}")
        return uid

    def grant(self, user_id: int, role: str, scope_type: str = "", scope_id: str = "") -> None:
        self.s.add("role_grants", f"{user_id}\t{role}\t{scope_type}\t{scope_id}\t{self.ts}")

    def org(self, name: str, kind: str, sector: str, region: str, parent: int | None, market: int | None = None,
            station: str | None = None, platform: str | None = None) -> int:
        oid = self.next_id("party_orgs")
        join_code = f"J{oid:07d}" if sector == "rider" else N
        self.s.add("party_orgs", f"{oid}\t{name}\t{kind}\t{sector}\t{region}\t{parent or N}\t{market or N}\t"
                                 f"{station or N}\t{platform or N}\t{join_code}\t{self.ts}\t{self.ts}")
        secretary = self.user("sec")
        self.grant(secretary, "branch_secretary", "org", str(oid))
        return oid

    def token(self) -> str:
        raw = base64.b64encode(self.rng.getrandbits(72).to_bytes(9, "big"), b"xy").decode()
        return raw

    def day(self, offset: int) -> str:
        return (self.today + timedelta(days=offset)).isoformat()

    # -- the layout ------------------------------------------------------------------------------
    def generate(self) -> None:
        shape, rng = self.shape, self.rng
        self.s.add("pledge_templates", f"1\tprov0000000001\t1\t诚信经营承诺书\t{PLEDGE_ITEMS}\t12\t{PROVINCE}\t"
                                       f"t\t{self.ts}\t{self.ts}")
        for code in sorted({PROVINCE, *{c[:4] + "00" for c in shape.counties}, *shape.counties}):
            self.regulators[code] = self.user("reg")
            self.grant(self.regulators[code], "regulator", "region", code)
        cities = sorted({c[:4] + "00" for c in shape.counties})
        committees = {city: self.org(f"{self.names.get(city, city)}市场监管系统非公党委", "committee", "market", city, None)
                      for city in cities}
        plan = self.market_plan()
        riders_left = shape.riders
        for i, county in enumerate(shape.counties):
            county_name = self.names.get(county, county)
            general = self.org(f"{county_name}专业市场党总支", "general_branch", "market", county, committees[county[:4] + "00"])
            joint = self.org(f"{county_name}专业市场联合党支部", "joint_branch", "market", county, general)
            for sizes in plan.get(county, []):
                self.market(county, county_name, sizes, general, joint)
            share = riders_left // (len(shape.counties) - i)
            riders_left -= share
            self.riders(county, county_name, share, general)

    def market_plan(self) -> dict[str, list[int]]:
        """Stalls per market, by county."""
        shape, rng = self.shape, self.rng
        plan: dict[str, list[int]] = {}
        markets, stalls = shape.markets, shape.stalls
        if shape.reference:
            plan[shape.reference] = split(shape.ref_stalls, shape.ref_markets, rng)
            markets, stalls = markets - shape.ref_markets, stalls - shape.ref_stalls
        others = [c for c in shape.counties if c != shape.reference] or shape.counties
        sizes = split(stalls, markets, rng)
        weights = [rng.uniform(0.5, 1.5) for _ in others]
        for size in sizes:
            county = rng.choices(others, weights)[0]
            plan.setdefault(county, []).append(size)
        return plan

    def market(self, county: str, county_name: str, stalls: int, general: int, joint: int) -> None:
        rng, ts = self.rng, self.ts
        mid = self.next_id("markets")
        goods = rng.choice(GOODS)
        self.s.add("markets", f"{mid}\t{county_name}{goods}市场{mid}号\t{county}\t"
                              f"{rng.choice(('农贸市场', '综合市场', '小商品市场', '服装市场', '建材市场'))}\t"
                              f"m{mid:011d}\t{ts}\t{ts}")  # the public page's token; no draw (same world)
        manager = self.user("mgr")
        self.grant(manager, "market_manager", "market", str(mid))
        branch = self.org(f"{county_name}{goods}市场{mid}号党支部", "branch", "market", county, general, mid) \
            if rng.random() < 1 / 3 else joint
        run_left, merchant = 0, None
        for n in range(stalls):
            sid = self.next_id("stalls")
            token = self.token()
            if sid % self.token_sample == 0:
                self.tokens.append(token)
            held = None
            if rng.random() < CLAIMED_SHARE:
                if run_left <= 0:
                    merchant = self.merchant(mid, county, county_name, manager, branch)
                    run_left = rng.choices((1, 2, 3), (75, 18, 7))[0]
                run_left -= 1
                held = merchant
            else:
                run_left = 0
            self.s.add("stalls", f"{sid}\t{mid}\t{chr(65 + n // 1000 % 26)}-{n:04d}\t{token}\t"
                                 f"{held[0] if held else N}\t1\t{ts}\t{ts}\t{ts}")
            if held:
                self.s.add("stall_claims", f"{sid}\t{held[0]}\t{sid}\tconfirmed\t{held[1]}\t{manager}\t{ts}\t{ts}\t{ts}")

    def merchant(self, market: int, county: str, county_name: str, manager: int, branch: int) -> tuple[int, int]:
        rng, ts = self.rng, self.ts
        owner = self.user("own")
        self.grant(owner, "merchant")
        mid = self.next_id("merchants")
        surname = SURNAMES[mid % len(SURNAMES)]
        name = f"{surname}记{rng.choice(GOODS)}店{mid}"
        uscc = f"92{county}MA{mid:08d}"[:18]
        self.s.add("merchants", f"{mid}\t{owner}\t{name}\t{'小微企业' if rng.random() < 0.1 else '个体工商户'}\t{uscc}\t"
                                f"{surname}某\t{ts}\t{ts}")
        self.credentials(mid, owner, uscc, county_name, manager)
        self.pledges(mid, market, owner, manager, f"{surname}某")
        if rng.random() < 0.06:  # 党员经营户
            self.member(branch, owner, manager)
        return mid, owner

    def credential(self, merchant: int, owner: int, kind: str, number: str, issuer: str, manager: int,
                   long_term: bool) -> None:
        rng, ts = self.rng, self.ts
        cid = self.next_id("credentials")
        roll = rng.random()
        status = "verified" if roll < 0.92 else "pending" if roll < 0.97 else "rejected"
        until = N if long_term else self.day(rng.randint(-60, 365))  # some lapsed, the rest over the coming year
        valid_from = self.day(-rng.randint(400, 1800))
        reviewed = (f"{manager}\t{ts}\t{'照片不清晰' if status == 'rejected' else N}" if status != "pending"
                    else f"{N}\t{N}\t{N}")
        self.s.add("credentials", f"{cid}\t{merchant}\t{kind}\t{number}\t{issuer}\t{valid_from}\t{until}\t"
                                  f"{'t' if long_term else 'f'}\tph{cid:010d}\t{status}\t{owner}\t{reviewed}\t{ts}\t{ts}")

    def credentials(self, merchant: int, owner: int, uscc: str, county_name: str, manager: int) -> None:
        """A licence each; permits for enough entities that credentials == stalls."""
        issuer = f"{county_name}市场监督管理局"
        self.credential(merchant, owner, "business_licence", uscc, issuer, manager, self.rng.random() < 0.6)
        expected = self.shape.stalls * CLAIMED_SHARE / RUN_MEAN  # entities the runs give
        permit_share = min(1.0, max(0.0, (self.shape.stalls - expected) / expected))
        if self.rng.random() < permit_share:
            kind = self.rng.choices([k for k, _ in PERMIT_KINDS], [w for _, w in PERMIT_KINDS])[0]
            self.credential(merchant, owner, kind, f"JY{merchant:014d}", issuer, manager, False)

    def pledges(self, merchant: int, market: int, owner: int, manager: int, signer: str) -> None:
        rng = self.rng
        roll = rng.random()
        if roll >= 0.6:
            return
        status_roll = roll / 0.6
        if status_roll < 0.75:  # in force, and for a fifth of them a lapsed one before
            start = self.today - timedelta(days=rng.randint(0, 330))
            self.pledge(merchant, market, owner, manager, signer, "approved", start)
            if rng.random() < 0.2:
                self.pledge(merchant, market, owner, manager, signer, "approved", start - timedelta(days=365))
        elif status_roll < 0.85:  # lapsed
            self.pledge(merchant, market, owner, manager, signer, "approved",
                        self.today - timedelta(days=rng.randint(370, 700)))
        elif status_roll < 0.95:
            self.pledge(merchant, market, owner, None, signer, "pending", None)
        else:
            self.pledge(merchant, market, owner, manager, signer, "rejected", None)

    def pledge(self, merchant: int, market: int, owner: int, manager: int | None, signer: str, status: str,
               start: date | None) -> None:
        ts = self.ts
        valid = (f"{start} 16:00:00\t{start + timedelta(days=365)} 16:00:00" if start else f"{N}\t{N}")
        reviewed = f"{ts}\t{manager}" if manager else f"{N}\t{N}"
        reason = "承诺内容与经营范围不符" if status == "rejected" else N
        self.s.add("pledges", f"{merchant}\t{market}\t1\t1\t诚信经营承诺书\t{PLEDGE_ITEMS}\t12\t{signer}\t{owner}\t"
                              f"{status}\t{reviewed}\t{reason}\t{valid}\t{ts}\t{ts}")

    def member(self, org: int, user: int, reviewer: int) -> None:
        rng, ts = self.rng, self.ts
        roll = rng.random()
        status = "verified" if roll < 0.9 else "pending" if roll < 0.98 else "rejected"
        floating = rng.random() < 0.15
        self.s.add("party_memberships", f"{org}\t{user}\t{'formal' if rng.random() < 0.9 else 'probationary'}\t"
                                        f"{'t' if floating else 'f'}\t{'外省某村党支部' if floating else N}\t{status}\t"
                                        f"{reviewer if status != 'pending' else N}\t{ts if status != 'pending' else N}\t"
                                        f"{ts}\t{ts}")

    def riders(self, county: str, county_name: str, riders: int, general: int) -> None:
        if riders <= 0:
            return
        stations = [self.org(f"{county_name}{platform}站点骑手党支部", "branch", "rider", county, general,
                             station=f"{county_name}{platform}站", platform=platform) for platform in PLATFORMS]
        for _ in range(riders):
            rider = self.user("rid", "骑手")
            self.grant(rider, "rider")
            station = self.rng.choice(stations)
            self.s.add("station_riders", f"{station}\t{rider}\t{self.ts}")
            if self.rng.random() < 0.08:
                self.member(station, rider, rider)


def seed(shape: Shape, today: date, now: datetime, instance: str) -> list[str]:
    """Schema and regions through flask, then every table by COPY; sequences moved past the
    ids used; VACUUM ANALYZE (what autovacuum would have done in a living database)."""
    import psycopg

    started = time.perf_counter()
    recreate_database(shape.database)
    flask(shape.url, instance, "db", "upgrade")
    flask(shape.url, instance, "regions", "import", "--builtin")
    streams = Streams(shape.url)
    for table, columns in COLUMNS.items():
        streams.open(table, columns)
    world = World(shape, streams, today, now)
    world.generate()
    generated = time.perf_counter()
    shape.counts = streams.close()
    with psycopg.connect(psycopg_url(shape.url), autocommit=True) as conn:
        for table in COLUMNS:
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                         f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)")
        loaded = time.perf_counter()
        conn.execute("VACUUM (ANALYZE)")
    rows = sum(shape.counts.values())
    print(f"  {shape.name}: {rows:,} rows ({', '.join(f'{t} {n:,}' for t, n in shape.counts.items() if n)}) "
          f"generated+COPY {generated - started:.0f} s, vacuum/analyze {time.perf_counter() - loaded:.0f} s",
          flush=True)
    return world.tokens


def reuse(shape: Shape) -> list[str]:
    """A database kept by --keep: the outbox, consents and stored badges emptied; the same token
    sample as the seed took."""
    import psycopg

    with psycopg.connect(psycopg_url(shape.url), autocommit=True) as conn:
        conn.execute("TRUNCATE notifications, subscription_consents, stall_badges")
        conn.execute("VACUUM (ANALYZE) notifications")
        sample = max(1, shape.stalls // 20_000)
        return [row[0] for row in conn.execute("SELECT token FROM stalls WHERE id %% %s = 0 ORDER BY id", (sample,))]


# -- measuring in-process --------------------------------------------------------------------------

@contextlib.contextmanager
def app_for(shape: Shape, instance: str, **settings: str):
    """A Flask app on this shape's database, its engine disposed afterwards."""
    previous = dict(os.environ)
    os.environ.update({"DATABASE_URL": shape.url, "INSTANCE_DIR": instance, "SECRET_KEY": SECRET,
                       "LOG_LEVEL": "WARNING", **settings})
    os.environ.pop("REDIS_URL", None)
    from app import create_app

    app = create_app()
    try:
        with app.app_context():
            yield app
            from app.extensions import db

            db.session.remove()
            db.engine.dispose()
    finally:
        jobs = app.extensions.get("jobs_dispatcher")  # the embedded jobs pool polls its database
        if jobs is not None:
            jobs.stop(wait=False)
        os.environ.clear()
        os.environ.update(previous)


def timed(fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - started, result


def sweep(shape: Shape, instance: str, now: datetime) -> dict:
    """The due query alone (counted in the database), the sweep, and a rerun. The due query is
    timed as the sweep runs it, in one process: PostgreSQL runs no parallel workers for the
    SELECT of an INSERT … SELECT (a plain SELECT may get two, timed too, for reference)."""
    from sqlalchemy import func, select, text

    with app_for(shape, instance):
        from app.core.time import local_today
        from app.credentials.reminders import credential_expiry, due_credentials
        from app.extensions import db

        def due_query(workers: int) -> int:
            db.session.execute(text(f"SET LOCAL max_parallel_workers_per_gather = {workers}"))
            try:
                return db.session.scalar(select(func.count()).select_from(due_credentials(local_today(now)).subquery()))
            finally:
                db.session.commit()

        due_query(0)  # warm the cache as the sweep will find it
        due_seconds, due = min(timed(due_query, 0) for _ in range(2))
        parallel_seconds, _ = timed(due_query, 2)
        first_seconds, first = timed(credential_expiry, now)
        rerun_seconds, rerun = timed(credential_expiry, now)
        credentials = db.session.scalar(select(func.count()).select_from(db.Model.metadata.tables["credentials"]))
    print(f"  sweep {shape.name}: {credentials:,} credentials, {due:,} due; due query {due_seconds:.2f} s "
          f"(parallel {parallel_seconds:.2f} s), sweep {first_seconds:.2f} s (+{first['added']:,}), "
          f"rerun {rerun_seconds:.2f} s (+{rerun['added']})", flush=True)
    return {"credentials": credentials, "due": due, "due_s": due_seconds, "due_parallel_s": parallel_seconds,
            "first_s": first_seconds, "added": first["added"], "rerun_s": rerun_seconds,
            "rerun_added": rerun["added"]}


@contextlib.contextmanager
def simulator():
    """The WeChat simulator under gunicorn (one process: its state is in memory, threads for the
    concurrency). A sync worker answered one request at a time and closed every connection, which
    capped the dispatch measurement at ~420 calls/s on 2 cores; real WeChat serves many at once."""
    from scripts.bench.harness import gunicorn

    with gunicorn("app.wechat.simulator:create_simulator_app()", workers=1, ready_path="/", threads=16) as url:
        yield url + "/"


def dispatch(shape: Shape, instance: str, rows: int, processes: int, **extra_env: str) -> dict:
    """Give each owner in the outbox one consent, then send `rows` pending reminders through
    `processes` dispatchers (the scheduler's `flask reminders dispatch` loop, SKIP LOCKED splits
    the rows) to the simulator; messages per second over the wall time."""
    import psycopg

    with psycopg.connect(psycopg_url(shape.url), autocommit=True) as conn:
        conn.execute("INSERT INTO subscription_consents (user_id, template_key, remaining, updated_at) "
                     "SELECT DISTINCT user_id, 'credential_expiry', 1, now() FROM notifications "
                     "WHERE status = 'pending' ON CONFLICT DO NOTHING")
    with simulator() as sim:
        # Each process builds its app and fetches its access token first, then waits for the
        # common start; the rate is counted from that start to the last one's end.
        code = ("import sys, time\n"
                "from app import create_app\n"
                "from app.reminders.dispatcher import dispatch\n"
                "from app.wechat.client import wechat_client\n"
                "app = create_app()\n"
                "with app.app_context():\n"
                "    wechat_client().access_token\n"
                "    time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
                "    stats = dispatch(max_rows=int(sys.argv[1]))\n"
                "    print('SENT', stats.sent, stats.no_consent, stats.failed, stats.retried, time.time())\n")
        env = {**os.environ, "DATABASE_URL": shape.url, "INSTANCE_DIR": instance, "SECRET_KEY": SECRET,
               "LOG_LEVEL": "WARNING", "WECHAT_API_BASE_URL": sim, **extra_env}
        env.pop("REDIS_URL", None)
        start_at = time.time() + 8
        procs = [subprocess.Popen([python_bin(), "-c", code, str(rows // processes), str(start_at)], cwd=ROOT,
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(processes)]
        outputs = [p.communicate() for p in procs]
    sent = failed = 0
    ends = []
    for out, err in outputs:
        line = [l for l in out.splitlines() if l.startswith("SENT")]
        if not line:
            raise RuntimeError(f"dispatcher failed:\n{err[-2000:]}")
        parts = line[0].split()[1:]
        sent += int(parts[0])
        failed += sum(map(int, parts[1:4]))
        ends.append(float(parts[4]))
    if min(ends) - start_at < 0:
        raise RuntimeError("a dispatcher started late: raise the start delay")
    seconds = max(ends) - start_at
    print(f"  dispatch x{processes} {' '.join(extra_env.values())}: {sent:,} sent ({failed} not) in {seconds:.2f} s = {sent / seconds:,.0f}/s",
          flush=True)
    return {"sent": sent, "failed": failed, "seconds": seconds, "rate": sent / seconds, "processes": processes}


def badge_miss(big: tuple[Shape, list[str]], small: tuple[Shape, list[str]], instance: str) -> dict:
    """bench_badge's cache-miss measurement, on the province against 1,000 stalls; the badges
    of the first 1,000 sampled tokens are stored first, as `flask badge rebuild` does."""
    from scripts.bench.bench_badge import compare_miss_latency

    for shape, tokens in (big, small):
        with app_for(shape, instance):
            from app.badge.cache import rebuild

            rebuild(tokens[:1000])
    return compare_miss_latency((small[0].url, instance, small[1]), (big[0].url, instance, big[1]))


def rollups_ready(shape: Shape) -> bool:
    """The roll-ups (issue 14, item 2) are in this code and in its migrations."""
    import psycopg

    try:
        from app.stats.models import MarketCoverage
    except ImportError:
        return False
    with psycopg.connect(psycopg_url(shape.url)) as conn:
        return conn.execute("SELECT to_regclass(%s)", (MarketCoverage.__tablename__,)).fetchone()[0] is not None


def build_rollups(shape: Shape, instance: str) -> float:
    """`flask stats rollups rebuild` (kept by --reuse), then ANALYZE: the roll-up tables were
    empty when the seed analysed the database, and the planner would read them as such until
    autovacuum came by (it then took the primary key over 1.4 M rows for a query of none)."""
    import psycopg

    started = time.perf_counter()
    flask(shape.url, instance, "stats", "rollups", "rebuild", "--if-missing")
    seconds = time.perf_counter() - started
    with psycopg.connect(psycopg_url(shape.url), autocommit=True) as conn:
        conn.execute("ANALYZE")
    return seconds


def refresh_rollups(shape: Shape, instance: str) -> tuple[float, dict]:
    """The `coverage_refresh` series (every 5 minutes in production): store the rows time has
    changed since the rebuild (at local midnight thousands of markets' credentials start or
    end), as a deployment's scheduler would have before anyone reads them."""
    with app_for(shape, instance):
        from app.stats.reminders import refresh_coverage

        started = time.perf_counter()
        done = refresh_coverage()
        seconds = time.perf_counter() - started
    if done["markets"] or done["merchants"]:
        # The refresh deletes and re-inserts rows: their dead versions cost every due-rows read a
        # heap visit each (6–9 ms for ~6,500) until a VACUUM, which autovacuum's 20 % threshold
        # would not start for 4.6 M rows. Operations vacuums after the nightly refresh.
        import psycopg

        with psycopg.connect(psycopg_url(shape.url), autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE) merchant_scopes, market_coverage")
    return seconds, done


def overview_latency(shape: Shape, instance: str, region: str, samples: int) -> tuple[float, float, int]:
    """Median and p95 ms of GET /api/v1/stats/overview?region_code=… as that region's regulator,
    in-process (the Flask test client), and the body size."""
    from sqlalchemy import select

    with app_for(shape, instance) as app:
        from app.extensions import db
        from app.identity.auth import issue_token
        from app.identity.models import RoleGrant, User

        user = db.session.scalar(select(User).join(RoleGrant, RoleGrant.user_id == User.id).where(
            RoleGrant.role == "regulator", RoleGrant.scope_id == region))
        headers = {"Authorization": f"Bearer {issue_token(user)[0]}"}
        db.session.remove()
        client = app.test_client()
        url = f"/api/v1/stats/overview?region_code={region}"
        for _ in range(3):
            response = client.get(url, headers=headers)
            assert response.status_code == 200, response.get_data(as_text=True)[:500]
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            response = client.get(url, headers=headers)
            times.append((time.perf_counter() - started) * 1000)
        size = len(response.get_data())
    return statistics.median(times), statistics.quantiles(times, n=20)[18], size


def database_sizes(shape: Shape) -> tuple[int, list[tuple[str, int, int]]]:
    import psycopg

    with psycopg.connect(psycopg_url(shape.url)) as conn:
        total = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        tables = conn.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid), pg_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public' "
            "ORDER BY 2 DESC LIMIT 10").fetchall()
    return total, tables


def mb(n: int) -> str:
    return f"{n / 2 ** 20:,.0f} MB"


# -- main ---------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="share of the province to seed (1 = 2,000,000 stalls)")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards (default: dropped)")
    parser.add_argument("--reuse", action="store_true",
                        help="measure databases kept by an earlier --keep run of the same scale (outbox emptied)")
    parser.add_argument("--dispatch-rows", type=int, default=4000)
    parser.add_argument("--samples", type=int, default=15, help="overview requests per database")
    parser.add_argument("--only", default="sweep,dispatch,badge,overview",
                        help="parts to measure after seeding: sweep, dispatch, badge, overview")
    args = parser.parse_args()
    only = set(args.only.split(","))

    os.environ.setdefault("SECRET_KEY", SECRET)
    from app.core.time import local_midnight_utc, local_today

    today = local_today()
    now = local_midnight_utc(today) + timedelta(hours=1)  # 09:00 Asia/Shanghai, when the sweep runs
    worlds = shapes(args.scale)
    instance = tempfile.mkdtemp(prefix="bench-province-")
    bench = Bench(f"province on PostgreSQL (scale {args.scale:g}: {worlds['province'].stalls:,} stalls)")
    started = time.perf_counter()
    load_at_start = os.getloadavg()[0]  # other work on the machine moves every figure
    try:
        print(f"== seeding (COPY); load average {load_at_start:.1f} ==", flush=True)
        tokens = {}
        for name in ("small", "county", "twentieth", "province"):
            tokens[name] = reuse(worlds[name]) if args.reuse else seed(worlds[name], today, now, instance)
        province, county, twentieth, small = (worlds[n] for n in ("province", "county", "twentieth", "small"))
        seed_seconds = time.perf_counter() - started

        if "sweep" in only:
            print(f"== P12 credential-expiry sweep; load average {os.getloadavg()[0]:.1f} ==", flush=True)
            base_sweep = sweep(twentieth, instance, now)
            big_sweep = sweep(province, instance, now)
            ratio = big_sweep["first_s"] / base_sweep["first_s"]
            bench.add("P12", f"sweep, {big_sweep['credentials']:,} vs {base_sweep['credentials']:,} credentials",
                      f"{big_sweep['first_s']:.2f} s vs {base_sweep['first_s']:.2f} s = {ratio:.1f}× "
                      f"(+{big_sweep['added']:,} vs +{base_sweep['added']:,} reminders)", f"≤ {SWEEP_GOAL:g}×",
                      ratio <= SWEEP_GOAL)
            bench.add("P12", "rerun adds", f"{big_sweep['rerun_added']} (100k: {base_sweep['rerun_added']})", "0",
                      big_sweep["rerun_added"] == 0 and base_sweep["rerun_added"] == 0)
            rerun = big_sweep["rerun_s"] / big_sweep["due_s"]
            bench.add("P12", "rerun vs its due query (province)",
                      f"{big_sweep['rerun_s']:.2f} s vs {big_sweep['due_s']:.2f} s = {rerun:.2f}× "
                      f"({big_sweep['due']:,} due; due query with 2 parallel workers {big_sweep['due_parallel_s']:.2f} s)",
                      f"≤ {RERUN_GOAL:g}×", rerun <= RERUN_GOAL)

        if "dispatch" in only:
            print(f"== dispatch to the WeChat simulator; load average {os.getloadavg()[0]:.1f} ==", flush=True)
            one = dispatch(province, instance, args.dispatch_rows // 2, 1)
            two = dispatch(province, instance, args.dispatch_rows, 2)
            best = max(one, two, key=lambda d: d["rate"])
            bench.add("(P12)", "dispatch to the simulator, 1 / 2 dispatcher processes",
                      f"{one['rate']:,.0f} / {two['rate']:,.0f} msg/s ({one['sent'] + two['sent']:,} sent, "
                      f"{one['failed'] + two['failed']} not)", f"≥ {DISPATCH_GOAL:g}/s", best["rate"] >= DISPATCH_GOAL)

        if "badge" in only:
            print(f"== badge miss latency; load average {os.getloadavg()[0]:.1f} ==", flush=True)
            found = badge_miss((province, tokens["province"]), (small, tokens["small"]), instance)
            from scripts.bench.bench_badge import add_miss_bar

            add_miss_bar(bench, "P8/P10", f"badge miss, {province.stalls:,} vs 1,000 stalls (median)", found, MISS_GOAL)

        if "overview" in only:
            print(f"== P10 stats overview; load average {os.getloadavg()[0]:.1f} ==", flush=True)
            if rollups_ready(province):
                built = {shape.name: build_rollups(shape, instance) for shape in (county, province)}
                print(f"  roll-ups rebuilt: county {built['county']:.1f} s, province {built['province']:.1f} s", flush=True)
                for shape in (county, province):
                    seconds, done = refresh_rollups(shape, instance)
                    print(f"  {shape.name}: coverage_refresh {seconds:.1f} s ({done['markets']:,} markets, "
                          f"{done['merchants']:,} entities past their changes_at)", flush=True)
                county_ms, county_p95, county_size = overview_latency(county, instance, REFERENCE_COUNTY, args.samples)
                inside_ms, inside_p95, _ = overview_latency(province, instance, REFERENCE_COUNTY, args.samples)
                province_ms, province_p95, province_size = overview_latency(province, instance, PROVINCE, args.samples)
                county_again, _, _ = overview_latency(county, instance, REFERENCE_COUNTY, args.samples)
                county_ms = min(county_ms, county_again)
                ratio = province_ms / county_ms
                bench.add("P10", f"GET /stats/overview, province ({province.stalls:,} stalls) vs county DB (10,000)",
                          f"{province_ms:.0f} ms vs {county_ms:.0f} ms = {ratio:.2f}× (p95 {province_p95:.0f} vs "
                          f"{county_p95:.0f} ms; {province_size / 1024:.0f} KB vs {county_size / 1024:.0f} KB)",
                          f"≤ {OVERVIEW_GOAL:g}×", ratio <= OVERVIEW_GOAL)
                bench.add("(P10)", "the same county inside the province DB",
                          f"{inside_ms:.0f} ms (p95 {inside_p95:.0f}) = {inside_ms / county_ms:.2f}× its own DB", "—", True)
            else:
                bench.add("P10", "GET /stats/overview", "not measured: app.stats.rollups missing", "≤ 1.5×", False)

        bench.add("load", "load average (1 min) at start / end of the run (2 cores)",
                  f"{load_at_start:.1f} / {os.getloadavg()[0]:.1f}", "—", True)
        total, tables = database_sizes(province)
        bench.add("size", "pg_database_size (province, after the sweep)", mb(total), "—", True)
        for name, whole, heap in tables:
            bench.add("size", f"  {name} (table + indexes)", f"{mb(whole)} (heap {mb(heap)})", "—", True)
        small_total, _ = database_sizes(county)
        bench.add("size", "pg_database_size (10,000-stall county)", mb(small_total), "—", True)
        if not args.reuse:
            bench.add("time", "seeding, all four databases (COPY, vacuum)", f"{seed_seconds:.0f} s", "—", True)
    finally:
        if not args.keep:
            for shape in worlds.values():
                with contextlib.suppress(Exception):
                    drop_database(shape.database)
    print(f"\nwhole run {time.perf_counter() - started:.0f} s")
    return bench.report()


if __name__ == "__main__":
    sys.exit(main())
