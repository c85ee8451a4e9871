"""A live server on a free port for browser tests: the same app object (and so the same database)
as the test, served by werkzeug in a thread."""
import threading

import pytest
from werkzeug.serving import make_server

from tests.markets.factories import Shop


@pytest.fixture(autouse=True)
def _fresh_badge_cache(app):
    from app.markets.badge_cache import local_cache

    # tests/conftest.py cleans kv outside the app context, which misses this app's store once
    # another test has created a second app: clear ours here (rate-limit counters, tokens).
    app.extensions["kv"].local.clear()
    local_cache.clear()
    yield
    local_cache.clear()


@pytest.fixture
def shop(client, auth, make_market):
    return Shop(client, auth, make_market)


@pytest.fixture
def live_server(app, db):
    db.session.commit()  # everything seeded so far is visible to the server thread
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
