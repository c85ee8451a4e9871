"""A live server on a free port for browser tests: the same app object (and so the same database)
as the test, served by werkzeug in a thread."""
import threading

import pytest
from werkzeug.serving import make_server


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
