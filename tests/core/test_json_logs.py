"""Issue 13 item 4: LOG_FORMAT=json writes one JSON object per line, one access line per
request (route template, method, status, latency, numeric user id), and nothing personal."""
import io
import json
import logging

import pytest

SECRETS = ("13700137009", "13800138000", "json-log-openid", "SecretTok3n9", "abc.def.ghi", "lat=", "23.476912")


@pytest.fixture
def json_app(app):
    from app import create_app
    from app.core.logging import RequestContextFilter, configure_logging, formatter
    from config import TestConfig

    config = TestConfig()
    config.SQLALCHEMY_DATABASE_URI = app.config["SQLALCHEMY_DATABASE_URI"]
    config.LOG_FORMAT = "json"
    json_app = create_app(config)
    # What the process's log handler writes, captured: the same filter and formatter.
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(formatter("json"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield json_app, sink
    finally:
        root.removeHandler(handler)
        configure_logging(app.config["LOG_LEVEL"], "text")


def _lines(sink) -> list[dict]:
    return [json.loads(line) for line in sink.getvalue().splitlines() if line.strip()]


def test_json_lines_with_one_access_line_per_request(json_app, wechat_sim):
    json_app, sink = json_app
    client = json_app.test_client()
    with json_app.app_context():
        login = client.post("/api/v1/auth/login", json={"code": "sim-json-log-openid"})
        assert login.status_code == 200
        user_id, token = login.get_json()["user"]["id"], login.get_json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert client.post("/api/v1/auth/phone", json={"code": "sim-phone-13700137009"},
                           headers=bearer).status_code == 200
        assert client.get("/api/v1/me", headers=bearer).status_code == 200
        client.get("/api/v1/care-stations?lat=23.476912&lng=111.279055&radius_m=3000")
        client.get("/s/SecretTok3n9", headers={"Authorization": "Bearer abc.def.ghi"})
        client.get("/no/such/path?phone=13800138000")
        logging.getLogger("app.test").warning("a careless message: 13800138000 Bearer abc.def.ghi")

    text = sink.getvalue()
    lines = _lines(sink)  # every line parses
    for secret in SECRETS:
        assert secret not in text, secret
    assert str(token) not in text
    for line in lines:
        assert {"time", "level", "logger", "message", "request_id"} <= set(line)

    access = [line for line in lines if line["logger"] == "app.access"]
    assert [(a["method"], a["route"], a["status"]) for a in access] == [
        ("POST", "/api/v1/auth/login", 200),
        ("POST", "/api/v1/auth/phone", 200),
        ("GET", "/api/v1/me", 200),
        ("GET", "/api/v1/care-stations", 200),
        ("GET", "/s/<token>", 404),
        ("GET", "(unmatched)", 404),
    ]
    # the id of the user a request authenticated; None where none did (public routes, login)
    assert [a["user_id"] for a in access] == [None, user_id, user_id, None, None, None]
    for a in access:
        assert isinstance(a["latency_ms"], (int, float)) and a["latency_ms"] >= 0
        assert len(a["request_id"]) == 32
        assert set(a) == {"time", "level", "logger", "message", "request_id", "route", "method", "status",
                          "latency_ms", "user_id"}
    careless = next(line for line in lines if line["logger"] == "app.test")
    assert "138****8000" in careless["message"] and "Bearer ***" in careless["message"]


def test_the_badge_fast_path_writes_its_access_line_too(json_app, shop):
    json_app, sink = json_app
    market = shop.market()
    token = shop.stalls(market, shop.manager(market), ["J-01"])[0]["token"]
    sink.truncate(0)
    sink.seek(0)
    client = json_app.test_client()
    for _ in range(2):  # the second is answered by the fast path, outside Flask
        assert client.get(f"/api/v1/public/stalls/{token}").status_code == 200
    access = [line for line in _lines(sink) if line["logger"] == "app.access"]
    assert [(a["route"], a["status"]) for a in access] == [("/api/v1/public/stalls/<token>", 200)] * 2
    assert token not in sink.getvalue()


def test_text_stays_the_default(app, client, caplog):
    """Without LOG_FORMAT=json nothing changes: gunicorn writes the access line, not the app."""
    assert app.config["LOG_FORMAT"] == "text"
    with caplog.at_level(logging.INFO, logger="app.access"):
        client.get("/healthz")
    assert not [r for r in caplog.records if r.name == "app.access"]
