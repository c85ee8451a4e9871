"""R7, first column of the matrix: every /api/v1 route that is not public answers 401 in the
envelope without a token — before validating the body, whatever the route."""
import re

from tests.conftest import error_code

# Routes anyone may call without logging in (PRODUCT.md's contract).
PUBLIC = {
    ("POST", "/api/v1/auth/login"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/docs"), ("GET", "/api/v1/docs/errors"),
    ("GET", "/api/v1/docs/assets/<path:name>"),
    ("GET", "/api/v1/pledge-templates"),
    ("GET", "/api/v1/care-stations"),
    ("GET", "/api/v1/report-categories"),  # 骑手随手拍 categories and their points
    # The URL itself is the credential: signed for 60 s (tests/activities/test_checkin.py).
    ("GET", "/api/v1/checkin-code-images/<signed>.png"),
    # Outside /api/v1: a market's public page for its entrance board (tests/exemplars/test_market_page.py).
    ("GET", "/m/<token>"),
}
PUBLIC_PREFIXES = ("/api/v1/public/stalls/<token>", "/api/v1/pledge-templates/<int:template_id>")


def _api_routes(app):
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            public = (method, rule.rule) in PUBLIC or (
                method == "GET" and rule.rule.startswith(PUBLIC_PREFIXES))
            if not public:
                yield method, rule.rule


def _concrete(path: str) -> str:
    path = re.sub(r"<int:[^>]+>", "1", path)
    return re.sub(r"<[^>]+>", "abcdefghijkl", path)


def test_there_are_protected_routes(app):
    assert len(list(_api_routes(app))) >= 4


def test_every_protected_route_is_401_without_token(app, client):
    failures = []
    for method, rule in _api_routes(app):
        response = client.open(_concrete(rule), method=method, json={})
        if response.status_code != 401:
            failures.append((method, rule, response.status_code))
            continue
        assert error_code(response) == "UNAUTHORIZED"
    assert failures == []


def test_every_protected_route_is_401_with_garbage_token(app, client):
    for method, rule in _api_routes(app):
        response = client.open(_concrete(rule), method=method, json={},
                               headers={"Authorization": "Bearer not-a-token"})
        assert response.status_code == 401, (method, rule)
        assert error_code(response) == "TOKEN_INVALID"


# Outside /api/v1, operators' endpoints with a rule of their own instead of a login: /metrics
# answers loopback, METRICS_ALLOW networks and a bearer of METRICS_TOKEN (tests/core/test_metrics.py).
GUARDED = {("GET", "/metrics")}


def test_guarded_operator_routes_are_404_from_outside(app, client):
    routes = {(method, rule.rule) for rule in app.url_map.iter_rules() if rule.endpoint.startswith("metrics.")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == GUARDED
    for method, rule in GUARDED:
        for headers in ({}, {"Authorization": "Bearer not-a-token"}):
            response = client.open(rule, method=method, headers=headers, environ_base={"REMOTE_ADDR": "203.0.113.9"})
            assert response.status_code == 404, (method, rule)
            assert error_code(response) == "NOT_FOUND"
