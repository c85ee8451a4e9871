"""Every error leaves as the envelope, with a request id, and rolls its transaction back."""
from flask import Blueprint

from tests.conftest import error_code


def test_unknown_path_is_envelope_404(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert error_code(response) == "NOT_FOUND"
    assert response.headers["X-Request-ID"]


def test_wrong_method_is_envelope_405(client):
    response = client.delete("/api/v1/auth/login")
    assert response.status_code == 405
    assert error_code(response) == "METHOD_NOT_ALLOWED"


def test_malformed_json_is_envelope_400(client):
    response = client.post("/api/v1/auth/login", data="{not json", content_type="application/json")
    assert response.status_code in (400, 422)
    assert error_code(response) in ("INVALID_JSON", "VALIDATION_ERROR")


def test_validation_error_lists_fields(client):
    response = client.post("/api/v1/auth/login", json={"code": 42})
    assert response.status_code == 422
    assert error_code(response) == "VALIDATION_ERROR"
    assert "code" in response.get_json()["error"]["details"]["fields"]
    assert "提交的内容有误" in response.get_json()["error"]["message"]


def test_body_over_limit_is_envelope_413(app, client):
    limit = app.config["MAX_CONTENT_LENGTH"]
    response = client.post("/api/v1/auth/login", data=b"x" * (limit + 1),
                           content_type="application/json")
    assert response.status_code == 413
    assert error_code(response) == "PAYLOAD_TOO_LARGE"


def test_unexpected_exception_is_500_envelope_and_rolls_back(app, db, caplog):
    from app import create_app
    from app.identity.models import User
    from config import TestConfig

    app = create_app(TestConfig())  # the shared app has served requests: routes are frozen
    bp = Blueprint("boom", __name__)

    @bp.post("/boom")
    def boom():
        db.session.add(User(openid="half-written"))
        db.session.flush()
        raise RuntimeError("boom")

    app.register_blueprint(bp)
    with app.app_context():
        response = app.test_client().post("/boom", headers={"X-Request-ID": "trace-12345678"})
    assert response.status_code == 500
    assert error_code(response) == "INTERNAL_ERROR"
    server_id = response.headers["X-Request-ID"]
    assert response.get_json()["error"]["details"]["request_id"] == server_id != "trace-12345678"
    assert b"Traceback" not in response.data
    assert db.session.query(User).filter_by(openid="half-written").count() == 0
    assert any(server_id == getattr(r, "request_id", None) for r in caplog.records)


def test_request_id_is_the_servers_and_a_client_id_is_echoed_labelled(client):
    response = client.get("/healthz", headers={"X-Request-ID": "abcd-1234-efgh"})
    assert len(response.headers["X-Request-ID"]) == 32 and response.headers["X-Request-ID"] != "abcd-1234-efgh"
    assert response.headers["X-Client-Request-ID"] == "abcd-1234-efgh"
    bad = client.get("/healthz", headers={"X-Request-ID": "bad id <script>"})
    assert len(bad.headers["X-Request-ID"]) == 32 and "X-Client-Request-ID" not in bad.headers


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"]["database"] == "ok"


def test_login_is_rate_limited_per_address(client, clock):
    from datetime import datetime

    from miniprogram_api.auth import LOGINS_PER_MINUTE_PER_ADDRESS

    clock.set(datetime(2026, 3, 1, 1, 0, 5))
    codes = [client.post("/api/v1/auth/login", json={"code": "sim-many"}).status_code
             for _ in range(LOGINS_PER_MINUTE_PER_ADDRESS + 1)]
    assert codes[:-1] == [200] * LOGINS_PER_MINUTE_PER_ADDRESS
    limited = client.post("/api/v1/auth/login", json={"code": "sim-many"})
    assert limited.status_code == 429 and error_code(limited) == "RATE_LIMITED"
    assert limited.get_json()["error"]["details"]["retry_after_seconds"] == 55
    other = client.post("/api/v1/auth/login", json={"code": "sim-many"},
                        environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 200
    clock.set(datetime(2026, 3, 1, 1, 1, 0))  # next window
    assert client.post("/api/v1/auth/login", json={"code": "sim-many"}).status_code == 200


def test_behind_a_proxy_the_client_address_counts(app):
    from app import create_app
    from config import TestConfig

    config = TestConfig()
    config.SQLALCHEMY_DATABASE_URI = app.config["SQLALCHEMY_DATABASE_URI"]
    config.PROXY_COUNT = 1
    proxied = create_app(config)

    @proxied.get("/whoami")
    def whoami():
        from flask import request

        return {"addr": request.remote_addr}

    response = proxied.test_client().get("/whoami", headers={"X-Forwarded-For": "203.0.113.7"})
    assert response.get_json() == {"addr": "203.0.113.7"}


def test_without_a_proxy_forwarded_for_is_not_trusted(client, clock):
    """A client cannot dodge the login limit by inventing X-Forwarded-For."""
    from datetime import datetime

    from miniprogram_api.auth import LOGINS_PER_MINUTE_PER_ADDRESS

    clock.set(datetime(2026, 3, 1, 1, 0, 5))
    for i in range(LOGINS_PER_MINUTE_PER_ADDRESS):
        client.post("/api/v1/auth/login", json={"code": "sim-spoof"}, headers={"X-Forwarded-For": f"10.1.0.{i}"})
    spoofed = client.post("/api/v1/auth/login", json={"code": "sim-spoof"}, headers={"X-Forwarded-For": "10.9.9.9"})
    assert spoofed.status_code == 429
