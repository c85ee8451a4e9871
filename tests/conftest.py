"""Fixtures: one app and schema per session, a clean database per test, the WeChat simulator
over real HTTP, and helpers that log users in through it (flaskr's AuthActions).

Runs on SQLite by default; set DATABASE_URL / REDIS_URL (make test does, when they answer) to
run the same tests against PostgreSQL and Redis."""
from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime

import logging

import pytest
from sqlalchemy import text
from werkzeug.serving import make_server

from tests.s3server import moto_s3, s3_bucket, s3_store  # noqa: F401  fixtures: a real S3 server (moto)

_TMP = tempfile.mkdtemp(prefix="xgz-test-")
logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the in-test servers need no access log
os.environ.setdefault("INSTANCE_DIR", _TMP)
os.environ.setdefault("SECRET_KEY", "test-secret-key")
os.environ.setdefault("UPLOAD_DIR", os.path.join(_TMP, "uploads"))


@pytest.fixture(scope="session")
def wechat_sim():
    """The simulator on a real port: wechatpy reaches it over HTTP, as production reaches WeChat."""
    from app.wechat.simulator import create_simulator_app

    sim = create_simulator_app()
    server = make_server("127.0.0.1", 0, sim, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    sim.base_url = f"http://127.0.0.1:{server.server_port}/"
    yield sim
    server.shutdown()


def postgres_schema_url(url: str, schema: str) -> str:
    """Same PostgreSQL database, own schema: concurrent test runs (and the migration check)
    never see each other's tables."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


def drop_postgres_schema(url: str, schema: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(scope="session")
def _app(wechat_sim):
    from app import create_app
    from app.extensions import db, kv
    from config import TestConfig

    os.environ["WECHAT_API_BASE_URL"] = wechat_sim.base_url
    base_url = os.environ.setdefault("DATABASE_URL", f"sqlite:///{os.path.join(_TMP, 'test.db')}")
    schema = f"test_{os.getpid()}"
    config = TestConfig()
    if base_url.startswith("postgresql"):
        config.SQLALCHEMY_DATABASE_URI = postgres_schema_url(base_url, schema)
    app = create_app(config)
    kv.prefix = f"xgz-test-{os.getpid()}:"
    with app.app_context():
        db.drop_all()
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
    from app.core.caches import clear_process_caches

    clear_process_caches()  # also returns the badge reader's connection
    # Every app a test created (outage, proxy, migration checks) closes its pool now, not in
    # the garbage collector at interpreter exit, where a rollback can no longer run.
    for engines in list(db._app_engines.values()):
        for engine in engines.values():
            engine.dispose()
    if base_url.startswith("postgresql"):
        drop_postgres_schema(base_url, schema)


def _clean_database(db) -> None:
    tables = list(reversed(db.metadata.sorted_tables))
    if db.engine.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in tables)
        db.session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        for table in tables:
            db.session.execute(table.delete())
    db.session.commit()


def _clean_kv(kv) -> None:
    kv.local.clear()
    if kv.redis is not None:
        try:
            for key in kv.redis.scan_iter(match=kv.prefix + "*", count=1000):
                kv.redis.delete(key)
        except Exception:
            pass


@pytest.fixture
def app(_app, wechat_sim):
    from app.core.time import clock
    from app.extensions import db, kv

    wechat_sim.sim_state.reset()
    _app.extensions.pop("wechat_client", None)
    with _app.app_context():
        yield _app
        db.session.rollback()
        _clean_database(db)
        _clean_kv(kv)  # inside the context: kv resolves to this app's store
    clock.set(None)
    from app.core.caches import clear_process_caches

    clear_process_caches()  # ids restart per test: no cached badge, token or fact outlives it


@pytest.fixture
def db(app):
    from app.extensions import db as _db

    return _db


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def clock():
    """Pass time in instead of sleeping: clock.set(datetime), clock.advance(timedelta)."""
    from app.core.time import clock as _clock

    yield _clock
    _clock.set(None)


@dataclass
class LoggedIn:
    user_id: int
    openid: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class AuthActions:
    """Log users in through the real endpoint and the simulator; grant roles like an operator."""

    def __init__(self, client) -> None:
        self.client = client

    def login(self, openid: str = "alice", role: str | None = None, scope: str | None = None) -> LoggedIn:
        if role:
            self.grant(openid, role, scope)
        response = self.client.post("/api/v1/auth/login", json={"code": f"sim-{openid}"})
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        return LoggedIn(user_id=body["user"]["id"], openid=openid, token=body["token"])

    def grant(self, openid: str, role: str, scope: str | None = None):
        from app.extensions import db
        from app.identity.services import find_or_create_user, grant_role

        user = find_or_create_user(openid)
        grant_role(user, role, scope, reason="测试")
        db.session.commit()
        return user


@pytest.fixture
def auth(client) -> AuthActions:
    return AuthActions(client)


@pytest.fixture
def regions(db):
    from app.core.regions import DEMO_REGIONS, upsert_regions

    upsert_regions(DEMO_REGIONS)
    db.session.commit()


@pytest.fixture
def shop(client, auth, make_market):
    """Markets, stalls, merchants, claims, credentials and pledges built through the real API."""
    from tests.markets.factories import Shop

    return Shop(client, auth, make_market)


def error_code(response) -> str:
    """The envelope's code; fails the test if the body is not the envelope."""
    body = response.get_json()
    assert body is not None and set(body) == {"error"}, response.data[:300]
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]["code"]


@pytest.fixture
def make_market(db, regions):
    from app.markets.models import Market

    def factory(name: str = "梧州市万秀区综合市场", region_code: str = "450403", **kwargs) -> Market:
        market = Market(name=name, region_code=region_code, kind=kwargs.pop("kind", "农贸市场"), **kwargs)
        db.session.add(market)
        db.session.commit()
        return market

    return factory


def at(value: str) -> datetime:
    """'2026-03-01 09:00' in Asia/Shanghai -> naive UTC, the form the clock and columns use."""
    from app.core.time import SHANGHAI, to_naive_utc

    return to_naive_utc(datetime.fromisoformat(value).replace(tzinfo=SHANGHAI))


def xlsx_table(data: bytes):
    """(heading lines, header, rows, worksheet) of an export made by app.core.xlsx: the header is
    the row just above the frozen pane."""
    import io

    from openpyxl import load_workbook

    ws = load_workbook(io.BytesIO(data)).active
    header_row = ws[ws.freeze_panes].row - 1
    rows = list(ws.iter_rows(values_only=True))
    heading = [r[0] for r in rows[:header_row - 1]]
    return heading, rows[header_row - 1], rows[header_row:], ws


@pytest.fixture
def thread_jobs(app):
    """Background jobs on the embedded backend (what runs without Redis), whatever the test run's
    REDIS_URL: a worker thread of this process claims them."""
    from app.jobs import embedded

    before = app.config["JOBS_BACKEND"]
    app.config["JOBS_BACKEND"] = "thread"
    yield app
    embedded.stop(app)
    app.config["JOBS_BACKEND"] = before
