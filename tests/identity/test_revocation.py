"""Issue 11 item 3 / R16: logout (one token or all), role revocation by API and CLI; every
revocation takes effect on the next request in every worker, however recently that worker
verified the token."""
import os

from app.core.audit import AuditEntry
from app.identity.models import RoleGrant
from tests.conftest import error_code


def _grant_id(db, user_id, role):
    return db.session.query(RoleGrant).filter_by(user_id=user_id, role=role).one().id


def test_logout_ends_this_token_only_unless_asked_for_all(client, auth, db):
    phone = auth.login("alice")
    tablet = auth.login("alice")
    assert client.get("/api/v1/me", headers=phone.headers).status_code == 200  # cached now
    assert client.post("/api/v1/auth/logout", headers=phone.headers).status_code == 204
    refused = client.get("/api/v1/me", headers=phone.headers)
    assert refused.status_code == 401 and error_code(refused) == "TOKEN_REVOKED"
    assert client.get("/api/v1/me", headers=tablet.headers).status_code == 200
    laptop = auth.login("alice")
    assert client.post("/api/v1/auth/logout", json={"all": True}, headers=tablet.headers).status_code == 204
    for token in (tablet, laptop):
        assert error_code(client.get("/api/v1/me", headers=token.headers)) == "TOKEN_INVALID"
    assert auth.login("alice").token  # logging in again works
    assert [e.after for e in db.session.query(AuditEntry).filter_by(action="auth.logout").order_by(AuditEntry.id)] == [
        {"all_tokens": False}, {"all_tokens": True}]
    assert error_code(client.post("/api/v1/auth/logout")) == "UNAUTHORIZED"
    assert client.post("/api/v1/auth/logout", json={"all": "yes"}, headers=laptop.headers).status_code in (401, 422)


def test_a_regulator_revokes_a_grant_in_their_region_once(client, auth, db, shop):
    market = shop.market()
    manager = shop.manager(market)
    assert client.get(f"/api/v1/markets/{market.id}", headers=manager.headers).status_code == 200
    grant_id = _grant_id(db, manager.user_id, "market_manager")
    regulator = auth.login("reg", role="regulator", scope="region:450400")
    elsewhere = auth.login("reg-cz", role="regulator", scope="region:450405")  # 长洲区: not this market
    body = {"reason": "已调离该市场"}
    assert error_code(client.post(f"/api/v1/role-grants/{grant_id}/revoke", json=body,
                                  headers=elsewhere.headers)) == "ROLE_GRANT_NOT_FOUND"
    assert error_code(client.post(f"/api/v1/role-grants/{grant_id}/revoke", json=body,
                                  headers=manager.headers)) == "FORBIDDEN"
    assert error_code(client.post(f"/api/v1/role-grants/{grant_id}/revoke", json={},
                                  headers=regulator.headers)) == "VALIDATION_ERROR"
    done = client.post(f"/api/v1/role-grants/{grant_id}/revoke", json=body, headers=regulator.headers)
    assert done.status_code == 200 and done.get_json()["role"] == "market_manager" and done.get_json()["revoked_at"]
    again = client.post(f"/api/v1/role-grants/{grant_id}/revoke", json=body, headers=regulator.headers)
    assert again.status_code == 409 and error_code(again) == "ROLE_ALREADY_REVOKED"
    assert client.get(f"/api/v1/markets/{market.id}", headers=manager.headers).status_code in (403, 404)
    entry = db.session.query(AuditEntry).filter_by(action="role.revoke").one()
    assert entry.actor_id == regulator.user_id and entry.reason == "已调离该市场"
    from app.reminders.models import Notification

    [notice] = db.session.query(Notification).filter_by(user_id=manager.user_id, kind="role_revoked").all()
    assert "市场管理方" in notice.body and "已调离该市场" in notice.body
    # Unscoped grants (admin, self-service roles) are an admin's to revoke.
    admin = auth.login("root", role="admin")
    admin_grant = _grant_id(db, admin.user_id, "admin")
    assert error_code(client.post(f"/api/v1/role-grants/{admin_grant}/revoke", json=body,
                                  headers=regulator.headers)) == "ROLE_GRANT_NOT_FOUND"
    assert error_code(client.post("/api/v1/role-grants/999999/revoke", json=body,
                                  headers=admin.headers)) == "ROLE_GRANT_NOT_FOUND"


def test_revocations_by_another_worker_take_effect_on_the_next_request(app, client, auth, db, regions):
    """The other worker is another process: a forked child revokes the role, then voids the
    token; this process had just verified (and cached) the token both times."""
    alice = auth.login("alice", role="regulator", scope="region:450400")
    assert [r["role"] for r in client.get("/api/v1/me", headers=alice.headers).get_json()["roles"]] == ["regulator"]
    grant_id = _grant_id(db, alice.user_id, "regulator")

    def in_another_worker(work):
        db.session.remove()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                for engine in db.engines.values():
                    engine.dispose(close=False)
                with app.app_context():
                    work()
                    db.session.commit()
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0

    def revoke_role():
        from app.identity.services import revoke_role as revoke

        revoke(db.session.get(RoleGrant, grant_id), actor=None, actor_role="cli", reason="调岗")

    in_another_worker(revoke_role)
    assert client.get("/api/v1/me", headers=alice.headers).get_json()["roles"] == []

    def log_out():
        from app.identity.models import User
        from app.identity.services import log_out as end

        end(db.session.get(User, alice.user_id), alice.token, everywhere=False)

    in_another_worker(log_out)
    assert error_code(client.get("/api/v1/me", headers=alice.headers)) == "TOKEN_REVOKED"


def test_operators_revoke_from_the_command_line(app, auth, client, db, regions):
    alice = auth.login("alice", role="regulator", scope="region:450400")
    runner = app.test_cli_runner()
    done = runner.invoke(args=["users", "revoke", "alice", "regulator", "--scope", "region:450400", "--reason", "离职"])
    assert done.exit_code == 0, done.output
    assert "已撤销" in done.output
    assert client.get("/api/v1/me", headers=alice.headers).get_json()["roles"] == []
    again = runner.invoke(args=["users", "revoke", "alice", "regulator", "--scope", "region:450400", "--reason", "离职"])
    assert again.exit_code != 0 and "已被撤销" in again.output
    missing = runner.invoke(args=["users", "revoke", "nobody", "regulator", "--reason", "x"])
    assert missing.exit_code != 0 and "找不到用户" in missing.output
    assert db.session.query(AuditEntry).filter_by(action="role.revoke", actor_role="cli").count() == 1
