"""Issue 10 item 4: every per-process cache is declared in one registry and one call clears
them all (between tests, and in a child after a fork)."""
import os

from app.core import caches


def test_every_cache_of_the_process_is_declared():
    import app.activities.checkin  # noqa: F401  (modules that own caches)
    import app.identity.auth  # noqa: F401
    import app.core.db  # noqa: F401
    import app.core.idempotency  # noqa: F401
    import app.badge.cache  # noqa: F401
    import app.core.user_reads  # noqa: F401

    assert {"principals", "known_checkins", "idempotent_answers", "prepared_statements", "badge_pages",
            "reader_connection", "user_reads"} <= set(caches.registered())


def test_one_call_empties_them_all(app, client, auth):
    from app.identity.auth import principal_cache

    user = auth.login("cached")
    assert client.get("/api/v1/me", headers=user.headers).status_code == 200
    assert principal_cache.holds(user.token)
    caches.clear_process_caches()
    assert not principal_cache.holds(user.token)


def test_the_app_owns_the_registry_and_a_forked_child_starts_empty(app, client, auth):
    from app.identity.auth import principal_cache

    assert app.extensions["process_caches"] is caches._registry
    user = auth.login("parent")
    assert client.get("/api/v1/me", headers=user.headers).status_code == 200
    assert principal_cache.holds(user.token)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report whether it inherited the parent's cached principal
        os.close(read)
        os.write(write, b"empty" if not principal_cache.holds(user.token) else b"kept")
        os._exit(0)
    os.close(write)
    answer = os.read(read, 16)
    os.waitpid(pid, 0)
    assert answer == b"empty"


def test_the_committed_data_reader_has_its_own_connection(app, db):
    """The reader answers on a connection of its own (not by falling back to the session),
    and that connection is out of the pool: the pool's own connections keep transactions."""
    from app.core import reader

    reader.close_thread_reader()
    assert reader.query("SELECT 1", ()) == [(1,)]
    own = reader._reader.reader
    assert own is not None and own.engine is db.engine
    assert own.fairy.driver_connection is None  # detached from the pool
