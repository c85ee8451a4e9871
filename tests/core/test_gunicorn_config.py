"""Issue 9 items 9 and 11: the shipped gunicorn config (deploy/gunicorn.conf.py), run for real.

Its access log records route templates and statuses, never raw coordinates, tokens or query
strings (R8 covers every line the deployment writes); a request line over gunicorn's limit is
answered in the API's JSON envelope, not gunicorn's HTML page."""
import json
import time
import urllib.error
import urllib.request

import pytest

from tests.deploy.county import api_host_on_sqlite

@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """gunicorn with the shipped config on a fresh SQLite database of its own."""
    with api_host_on_sqlite(tmp_path_factory.mktemp("gunicorn-instance")) as (base, process):
        yield base, process.log


def _get(url: str, headers: dict | None = None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_access_log_has_routes_not_raw_paths_queries_or_tokens(served):
    base, log = served
    status, _, _ = _get(base + "/api/v1/care-stations?lat=23.476912&lng=111.279055&radius_m=3000")
    assert status == 200
    _get(base + "/s/SecretTok3n9", headers={"Authorization": "Bearer abc.def.ghi"})
    _get(base + "/api/v1/credentials/42/photo?thumb=true", headers={"Authorization": "Bearer abc.def.ghi"})
    _get(base + "/no/such/path?phone=13800138000")
    time.sleep(0.3)
    text = log.read_text(errors="replace")
    assert '"GET /api/v1/care-stations HTTP/1.1" 200' in text
    assert '"GET /s/<token> HTTP/1.1" 404' in text
    assert '"GET /api/v1/credentials/<int:credential_id>/photo HTTP/1.1" 401' in text
    assert "(未匹配路由)" in text
    for secret in ("23.476912", "111.279055", "lat=", "SecretTok3n9", "abc.def.ghi", "13800138000", "thumb=true"):
        assert secret not in text, secret
    assert "rid=" in text


def test_a_request_line_over_the_limit_gets_the_json_envelope(served):
    base, log = served
    status, headers, body = _get(base + "/api/v1/pledge-templates?region=" + "4" * 9000)
    assert status == 414
    assert headers["Content-Type"] == "application/json"
    envelope = json.loads(body)
    assert envelope["error"]["code"] == "URI_TOO_LONG" and envelope["error"]["message"]
    # Under the limit, the app itself answers (with its own envelope and request id).
    status, headers, _ = _get(base + "/api/v1/pledge-templates?region=" + "4" * 5000)
    assert status == 422 and headers["X-Request-ID"]
    assert "4444444444" not in log.read_text(errors="replace")
