"""Login through wechatpy against the simulator over HTTP, tokens, phone binding, R8 and R11."""
import logging

import pytest

from tests.conftest import error_code


def test_login_creates_user_and_returns_token(client, wechat_sim):
    response = client.post("/api/v1/auth/login", json={"code": "sim-alice"})
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"token", "expires_in", "user"}
    assert body["expires_in"] > 0
    assert body["user"]["roles"] == []
    calls = wechat_sim.sim_state.received("sns/jscode2session")
    assert len(calls) == 1 and calls[0]["params"]["appid"] == "wxsimulator000001"

    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    assert me.get_json()["id"] == body["user"]["id"]


def test_second_login_finds_the_same_user(client):
    first = client.post("/api/v1/auth/login", json={"code": "sim-bob"}).get_json()
    second = client.post("/api/v1/auth/login", json={"code": "sim-bob"}).get_json()
    assert first["user"]["id"] == second["user"]["id"]


def test_bad_code_is_401_with_specific_code(client):
    response = client.post("/api/v1/auth/login", json={"code": "not-a-sim-code"})
    assert response.status_code == 401
    assert error_code(response) == "WECHAT_CODE_INVALID"
    assert response.get_json()["error"]["details"]["wechat_errcode"] == 40029


@pytest.mark.parametrize("errcode, status, code", [
    (-1, 503, "WECHAT_UNAVAILABLE"),
    (45011, 429, "WECHAT_RATE_LIMITED"),
    (40226, 403, "WECHAT_USER_BLOCKED"),
])
def test_wechat_faults_map_to_4xx_or_503(client, db, wechat_sim, errcode, status, code):
    from app.identity.models import User

    wechat_sim.sim_state.add_fault("sns/jscode2session", errcode=errcode, errmsg="fault", times=1)
    response = client.post("/api/v1/auth/login", json={"code": "sim-carol"})
    assert response.status_code == status
    assert error_code(response) == code
    assert db.session.query(User).filter_by(openid="carol").count() == 0


def test_wechat_timeout_is_503(app, client, wechat_sim):
    from app.wechat.client import wechat_client

    wechat_client().timeout = 0.3
    wechat_sim.sim_state.add_fault("sns/jscode2session", delay=1.0, times=1)
    response = client.post("/api/v1/auth/login", json={"code": "sim-dave"})
    assert response.status_code == 503
    assert error_code(response) == "WECHAT_UNAVAILABLE"
    assert response.get_json()["error"]["details"]["reason"] == "timeout"


def test_wechat_http_error_is_503(client, wechat_sim):
    wechat_sim.sim_state.add_fault("sns/jscode2session", http_status=502, times=1)
    response = client.post("/api/v1/auth/login", json={"code": "sim-erin"})
    assert response.status_code == 503


def test_session_key_never_leaves_the_server(client, db, caplog, wechat_sim):
    """R8: the session_key is stored, never returned, never logged."""
    from app.identity.models import WechatSession

    caplog.set_level(logging.DEBUG)
    response = client.post("/api/v1/auth/login", json={"code": "sim-frank"})
    token = response.get_json()["token"]
    client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    stored = db.session.query(WechatSession).one()
    assert len(stored.session_key) >= 16
    assert stored.session_key not in response.get_data(as_text=True)
    assert "session_key" not in response.get_data(as_text=True)
    assert stored.session_key not in caplog.text
    assert token not in caplog.text
    assert stored.session_key not in repr(stored)


def test_phone_is_bound_and_shown_masked(client, auth, db, caplog):
    from app.identity.models import User

    alice = auth.login("alice")
    response = client.post("/api/v1/auth/phone", json={"code": "sim-phone-13800138000"}, headers=alice.headers)
    assert response.status_code == 200
    assert response.get_json()["phone"] == "138****8000"
    assert db.session.get(User, alice.user_id).phone == "13800138000"
    me = client.get("/api/v1/me", headers=alice.headers).get_data(as_text=True)
    assert "13800138000" not in me
    assert "13800138000" not in caplog.text


def test_phone_with_bad_code_is_400(client, auth):
    alice = auth.login("alice")
    response = client.post("/api/v1/auth/phone", json={"code": "garbage"}, headers=alice.headers)
    assert response.status_code == 400
    assert error_code(response) == "WECHAT_PHONE_CODE_INVALID"


def test_missing_forged_and_revoked_tokens_are_401(client, auth, db):
    from app.identity.models import User
    from app.identity.services import revoke_tokens

    assert error_code(client.get("/api/v1/me")) == "UNAUTHORIZED"
    forged = client.get("/api/v1/me", headers={"Authorization": "Bearer abc.def.ghi"})
    assert forged.status_code == 401 and error_code(forged) == "TOKEN_INVALID"
    alice = auth.login("alice")
    revoke_tokens(db.session.get(User, alice.user_id))
    db.session.commit()
    revoked = client.get("/api/v1/me", headers=alice.headers)
    assert revoked.status_code == 401 and error_code(revoked) == "TOKEN_INVALID"


def test_expired_token_is_401(app, client, auth, monkeypatch):
    alice = auth.login("alice")
    import itsdangerous.timed

    real_now = itsdangerous.timed.TimestampSigner.get_timestamp
    ttl = app.config["AUTH_TOKEN_TTL_SECONDS"]
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp",
                        lambda self: real_now(self) + ttl + 10)
    response = client.get("/api/v1/me", headers=alice.headers)
    assert response.status_code == 401
    assert error_code(response) == "TOKEN_EXPIRED"


def test_token_refresh_storm_ends_with_one_fetch(app, wechat_sim):
    """R11: many threads hitting an expired token trigger one refresh, not one each."""
    import threading

    from app.wechat.client import wechat_client

    client = wechat_client()
    client.get_phone_number("sim-phone-13900139000")  # fetches the first token
    assert wechat_sim.sim_state.token_fetches == 1
    wechat_sim.sim_state.expire_tokens()
    errors = []

    def call():
        with app.app_context():
            try:
                client.get_phone_number("sim-phone-13900139000")
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert wechat_sim.sim_state.token_fetches == 2


def test_cached_principal_follows_role_and_token_changes_in_this_process(client, auth, db, regions):
    """Within a worker a grant, a revoked role or revoked tokens take effect on the next request
    even though the verified token is cached (other workers: tests/identity/test_revocation.py)."""
    from app.identity.models import RoleGrant, User
    from app.identity.services import revoke_role, revoke_tokens

    alice = auth.login("alice")
    assert client.get("/api/v1/me", headers=alice.headers).get_json()["roles"] == []
    auth.grant("alice", "regulator", "region:450400")
    assert [r["role"] for r in client.get("/api/v1/me", headers=alice.headers).get_json()["roles"]] == ["regulator"]
    grant = db.session.query(RoleGrant).filter_by(user_id=alice.user_id).one()
    admin = auth.login("root", role="admin")
    revoke_role(grant, actor=db.session.get(User, admin.user_id), actor_role="admin", reason="调岗")
    db.session.commit()
    assert client.get("/api/v1/me", headers=alice.headers).get_json()["roles"] == []
    revoke_tokens(db.session.get(User, alice.user_id))
    db.session.commit()
    assert client.get("/api/v1/me", headers=alice.headers).status_code == 401
