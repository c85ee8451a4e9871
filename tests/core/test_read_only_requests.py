"""Issue 10 (P9, shared layer): a GET runs without a transaction (on PostgreSQL, on the
autocommit `read` engine); a GET that writes without saying so fails loudly instead of
committing statement by statement."""
import pytest
from sqlalchemy import event, text

from app.core import transactions
from app.core.db import insert_ignore
from app.identity.models import User


def test_a_read_only_request_refuses_to_write(app, db):
    with app.test_request_context("/anything", method="GET"):
        transactions.begin_request(db.session(), read_only=True)
        db.session.add(User(openid="sneaky", token_version=1))
        with pytest.raises(transactions.WriteInReadOnlyRequest):
            db.session.flush()
        db.session.rollback()
        with pytest.raises(transactions.WriteInReadOnlyRequest):
            insert_ignore(User, {"openid": "sneaky", "token_version": 1}, ["openid"])
        with pytest.raises(transactions.WriteInReadOnlyRequest):
            db.session.execute(text("UPDATE users SET nickname = 'x'"))
        assert db.session.execute(text("SELECT count(*) FROM users")).scalar() == 0  # reads are fine
        transactions.end_request(db.session())
    assert db.session.scalar(text("SELECT count(*) FROM users")) == 0
    assert not transactions.is_read_only(db.session())


def test_only_safe_methods_without_the_mark_are_read_only():
    def view():
        return None

    assert transactions.wants_read_only("GET", view) and transactions.wants_read_only("HEAD", view)
    assert not transactions.wants_read_only("POST", view)
    assert not transactions.wants_read_only("GET", transactions.transactional(view))


def test_a_session_holding_work_keeps_its_transaction(app, db):
    """A caller serving requests inside its own app context (a test, the CLI) is not switched."""
    db.session.add(User(openid="pending", token_version=1))
    transactions.begin_request(db.session(), read_only=True)
    assert not transactions.is_read_only(db.session())
    db.session.commit()


def test_get_requests_run_on_the_read_engine_and_posts_on_the_default_one(app, client, auth, db):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the autocommit read engine exists on PostgreSQL only (SQLite begins only before a write)")
    user = auth.login("reader")
    used = {"read": 0, "default": 0}

    def counter(name):
        def count(conn, cursor, statement, parameters, context, executemany):
            used[name] += 1
            assert name != "read" or conn.connection.dbapi_connection.autocommit
        return count

    listeners = [(db.engines["read"], counter("read")), (db.engine, counter("default"))]
    for engine, listener in listeners:
        event.listen(engine, "before_cursor_execute", listener)
    try:
        from app.core.caches import clear_process_caches

        clear_process_caches()  # no cached principal: the token's user is read from the database
        assert client.get("/api/v1/me", headers=user.headers).status_code == 200
        assert used["read"] >= 1 and used["default"] == 0
        response = client.put("/api/v1/me", json={"show_name": True}, headers=user.headers)
        assert response.status_code == 200 and used["default"] >= 1
    finally:
        for engine, listener in listeners:
            event.remove(engine, "before_cursor_execute", listener)
