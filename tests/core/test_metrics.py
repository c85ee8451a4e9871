"""Issue 13 item 4: /metrics, read through the real endpoint.

Counters live for the whole test process (one registry per process, as in a worker), so every
assertion compares a value before and after the requests of its test."""
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import error_code

OUTSIDE = {"REMOTE_ADDR": "203.0.113.9"}


def scrape(client, **kwargs) -> dict:
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.data[:300]
    assert response.headers["Content-Type"].startswith("text/plain")
    values = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            values[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return values


def value(values: dict, name: str, **labels) -> float:
    return values.get((name, frozenset(labels.items())), 0.0)


def test_requests_are_labelled_by_route_template_never_the_raw_path(client):
    before = scrape(client)
    for _ in range(2):
        assert client.get("/api/v1/public/stalls/SecretTok3n9").status_code == 404
    client.get("/no/such/SecretPath42?phone=13800138000")
    assert client.get("/healthz").status_code == 200
    response = client.get("/metrics")
    text = response.get_data(as_text=True)
    after = scrape(client)

    route = "/api/v1/public/stalls/<token>"
    assert value(after, "xgz_http_requests_total", route=route, method="GET", status="404") - \
        value(before, "xgz_http_requests_total", route=route, method="GET", status="404") == 2
    assert value(after, "xgz_http_requests_total", route="(unmatched)", method="GET", status="404") - \
        value(before, "xgz_http_requests_total", route="(unmatched)", method="GET", status="404") == 1
    assert value(after, "xgz_http_request_duration_seconds_count", route="/healthz", method="GET", status="200") - \
        value(before, "xgz_http_request_duration_seconds_count", route="/healthz", method="GET", status="200") == 1
    for secret in ("SecretTok3n9", "SecretPath42", "13800138000", "phone="):
        assert secret not in text


def test_an_unknown_method_is_one_label_value(client):
    before = scrape(client)
    client.open("/healthz", method="BREW")
    after = scrape(client)
    assert value(after, "xgz_http_requests_total", route="(unmatched)", method="other", status="405") - \
        value(before, "xgz_http_requests_total", route="(unmatched)", method="other", status="405") == 1


def test_metrics_refused_from_outside_without_the_token(app, client, monkeypatch):
    refused = client.get("/metrics", environ_base=OUTSIDE)
    assert refused.status_code == 404 and error_code(refused) == "NOT_FOUND"
    assert b"xgz_http" not in refused.data
    # No token configured: a bearer of anything is refused too.
    assert client.get("/metrics", environ_base=OUTSIDE, headers={"Authorization": "Bearer x"}).status_code == 404

    monkeypatch.setitem(app.config, "METRICS_TOKEN", "scrape-secret-1")
    assert client.get("/metrics", environ_base=OUTSIDE,
                      headers={"Authorization": "Bearer wrong"}).status_code == 404
    allowed = client.get("/metrics", environ_base=OUTSIDE, headers={"Authorization": "Bearer scrape-secret-1"})
    assert allowed.status_code == 200 and b"xgz_http_requests_total" in allowed.data


def test_metrics_allowed_from_loopback_and_allowed_networks(app, client, monkeypatch):
    from app.core.metrics import parse_networks

    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    monkeypatch.setitem(app.extensions, "metrics_allow", parse_networks("10.0.0.0/8, 203.0.113.0/24"))
    assert client.get("/metrics", environ_base=OUTSIDE).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "198.51.100.1"}).status_code == 404


def test_through_an_undeclared_proxy_loopback_proves_nothing(client):
    """nginx on the same host makes every visitor 127.0.0.1: with PROXY_COUNT=0 a forwarded
    request is not taken for a local one."""
    response = client.get("/metrics", headers={"X-Forwarded-For": "198.51.100.7"})
    assert response.status_code == 404 and error_code(response) == "NOT_FOUND"


def test_behind_a_declared_proxy_the_forwarded_client_decides(app):
    from app import create_app
    from config import TestConfig

    config = TestConfig()
    config.SQLALCHEMY_DATABASE_URI = app.config["SQLALCHEMY_DATABASE_URI"]
    config.PROXY_COUNT = 1
    proxied = create_app(config).test_client()
    assert proxied.get("/metrics", headers={"X-Forwarded-For": "198.51.100.7"}).status_code == 404
    assert proxied.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200


def test_a_bad_allow_list_stops_the_start():
    from app.core.metrics import parse_networks

    with pytest.raises(ValueError, match="METRICS_ALLOW"):
        parse_networks("10.0.0.0/8, not-a-network")


def test_wechat_errors_are_counted_by_errcode(client, wechat_sim):
    before = scrape(client)
    wechat_sim.sim_state.add_fault("sns/jscode2session", errcode=45011, errmsg="fault", times=1)
    assert client.post("/api/v1/auth/login", json={"code": "sim-metrics-a"}).status_code == 429
    wechat_sim.sim_state.add_fault("sns/jscode2session", http_status=502, times=1)
    assert client.post("/api/v1/auth/login", json={"code": "sim-metrics-b"}).status_code == 503
    assert client.post("/api/v1/auth/login", json={"code": "sim-metrics-c"}).status_code == 200
    after = scrape(client)
    name = "xgz_wechat_api_errors_total"
    assert value(after, name, errcode="45011") - value(before, name, errcode="45011") == 1
    assert value(after, name, errcode="other") - value(before, name, errcode="other") == 1


def test_a_refused_subscribe_message_is_counted_once(app, client, wechat_sim, auth):
    """Through wechatpy's own request path (the dispatcher's), an expired token retried once."""
    from app.wechat.client import errcode_label, wechat_client

    before = scrape(client)
    wechat_sim.sim_state.add_fault("cgi-bin/message/subscribe/send", errcode=43101, errmsg="refuse", times=1)
    with pytest.raises(Exception) as raised:
        wechat_client().send_subscribe_message("metrics-openid", "sim-tpl-x", {}, page=None)
    assert getattr(raised.value, "errcode", None) == 43101
    after = scrape(client)
    assert value(after, "xgz_wechat_api_errors_total", errcode="43101") - \
        value(before, "xgz_wechat_api_errors_total", errcode="43101") == 1
    assert errcode_label("40001; DROP") == "other" and errcode_label(10**12) == "other"


def test_badge_cache_hits_and_misses(app, client, shop):
    from app.badge.cache import local_cache

    market = shop.market()
    manager = shop.manager(market)
    token = shop.stalls(market, manager, ["M-01"])[0]["token"]
    from app.badge.models import StallBadge
    from app.extensions import db

    db.session.query(StallBadge).delete()  # no stored projection: the first read computes it
    db.session.commit()
    local_cache.clear()

    before = scrape(client)
    assert client.get(f"/api/v1/public/stalls/{token}").status_code == 200  # miss: computed, stored
    assert client.get(f"/api/v1/public/stalls/{token}").status_code == 200  # this worker's memory
    local_cache.clear()
    assert client.get(f"/s/{token}").status_code == 200  # the stored projection
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("xgz_badge_cache_misses_total") == 1
    assert delta("xgz_badge_cache_hits_total", level="memory") == 1
    assert delta("xgz_badge_cache_hits_total", level="stored") == 1
