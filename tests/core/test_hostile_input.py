"""Issue 9 item 3: whatever a client can put in a request gets a 4xx envelope, on every route.

The classes: nesting depth, number size, text that is not valid Unicode (lone surrogates, NUL
and other control characters), empty bodies where a body is required, a national or malformed
region code, ids beyond what a column holds, unusual methods. Each is sent to every operation
of the OpenAPI document that takes a JSON body, not only to the route where it was found."""
import re

import pytest

from tests.conftest import error_code

HOSTILE_BODIES = {
    "deep nesting": ('{"a": ' + "[" * 3000 + "]" * 3000 + "}", 400, "JSON_TOO_DEEP"),
    "modest nesting beyond the limit": ('{"a": ' + "[" * 40 + "]" * 40 + "}", 400, "JSON_TOO_DEEP"),
    "5000-digit integer": ('{"a": ' + "9" * 5000 + "}", 422, "NUMBER_OUT_OF_RANGE"),
    "20-digit integer": ('{"a": ' + "1" * 20 + "}", 422, "NUMBER_OUT_OF_RANGE"),
    "float overflow": ('{"a": 1e999}', 422, "NUMBER_OUT_OF_RANGE"),
    "NaN": ('{"a": NaN}', 422, "NUMBER_OUT_OF_RANGE"),
    "lone surrogate": ('{"a": "x\\ud800y"}', 422, "TEXT_INVALID_CHARACTERS"),
    "lone surrogate in a key": ('{"\\udfff": 1}', 422, "TEXT_INVALID_CHARACTERS"),
    "NUL": ('{"a": "x\\u0000"}', 422, "TEXT_INVALID_CHARACTERS"),
    "escape character": ('{"a": "\\u001b[31m"}', 422, "TEXT_INVALID_CHARACTERS"),
    "invalid UTF-8": (b'{"a": "\xed\xa0\x80"}', 400, "INVALID_JSON"),
}


@pytest.fixture
def admin(app, auth):
    return auth.login("hostile-admin", role="admin")


def _json_operations(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in ("post", "put", "patch"):
                continue
            content = (operation.get("requestBody") or {}).get("content", {})
            if "application/json" in content:
                # Path parameters: 1 for ids, a plausible token for the rest.
                concrete = re.sub(r"\{(\w*id)\}", "1", path)
                concrete = re.sub(r"\{\w+\}", "Abc123", concrete)
                yield method, concrete


def test_every_json_route_refuses_each_hostile_body_with_its_code(client, admin):
    operations = list(_json_operations(client))
    assert len(operations) >= 20
    failures = []
    for method, path in operations:
        for label, (body, status, code) in HOSTILE_BODIES.items():
            response = client.open(path, method=method.upper(), data=body,
                                   content_type="application/json", headers=admin.headers)
            got = (response.status_code, error_code(response))
            if got != (status, code):
                failures.append(f"{method.upper()} {path} [{label}]: {got}")
    assert not failures, "\n".join(failures[:20])


def test_unauthenticated_login_refuses_hostile_codes(client):
    for body, status, code in HOSTILE_BODIES.values():
        response = client.post("/api/v1/auth/login", data=body, content_type="application/json")
        assert (response.status_code, error_code(response)) == (status, code)


def test_a_required_body_that_is_missing_or_empty_is_422(client, admin, db):
    from app.pledges.models import PledgeTemplate
    from app.extensions import db

    template = PledgeTemplate(family_id="f1", version=1, title="承诺书", items=["明码标价"],
                              term_months=12, region_code=None, active=True)
    db.session.add(template)
    db.session.commit()
    for data in (None, b"", b"  "):
        response = client.put(f"/api/v1/pledge-templates/{template.id}", data=data,
                              content_type="application/json", headers=admin.headers)
        assert response.status_code == 422 and error_code(response) == "BODY_REQUIRED"
    db.session.refresh(template)
    assert template.title == "承诺书"  # nothing was applied


def test_region_codes_that_match_no_county_are_answered(client, db, regions):
    """The national code built an empty SQL CASE (a 500); any 6-digit code now lists the
    templates that apply to it, and anything else is a field error."""
    from app.pledges.models import PledgeTemplate

    db.session.add_all([
        PledgeTemplate(family_id="nation", version=1, title="全国", items=["明码标价"], term_months=12,
                       region_code=None, active=True),
        PledgeTemplate(family_id="guangxi", version=1, title="广西", items=["明码标价"], term_months=12,
                       region_code="450000", active=True)])
    db.session.commit()
    titles = {}
    for region in ("000000", "990000", "450400"):
        response = client.get(f"/api/v1/pledge-templates?region={region}")
        assert response.status_code == 200, (region, response.data[:200])
        titles[region] = [item["title"] for item in response.get_json()["items"]]
    assert titles == {"000000": ["全国"], "990000": ["全国"], "450400": ["广西", "全国"]}
    malformed = client.get("/api/v1/pledge-templates?region=45040")
    assert malformed.status_code == 422 and error_code(malformed) == "VALIDATION_ERROR"


def test_ids_beyond_32_bits_are_refused_by_the_schema_and_the_router(client, admin):
    big = 2**40
    response = client.get(f"/api/v1/pledge-templates?market_id={big}")
    assert response.status_code == 422 and error_code(response) == "VALIDATION_ERROR"
    response = client.get(f"/api/v1/pledges/{big}", headers=admin.headers)
    assert response.status_code == 404 and error_code(response) == "NOT_FOUND"


def test_trace_and_other_methods_get_405_with_allow(client):
    for method in ("TRACE", "PATCH", "DELETE"):
        response = client.open("/api/v1/pledge-templates", method=method)
        assert response.status_code == 405 and error_code(response) == "METHOD_NOT_ALLOWED"
        assert "GET" in response.headers["Allow"]


def test_booleans_in_bodies_are_json_booleans_only(client, admin, db):
    from app.pledges.models import PledgeTemplate

    template = PledgeTemplate(family_id="f2", version=1, title="承诺书", items=["明码标价"],
                              term_months=12, region_code=None, active=True)
    db.session.add(template)
    db.session.commit()
    for value in (0, 1, "false", "yes", None):
        response = client.put(f"/api/v1/pledge-templates/{template.id}", json={"active": value},
                              headers=admin.headers)
        assert response.status_code == 422 and error_code(response) == "VALIDATION_ERROR", value
    db.session.refresh(template)
    assert template.active is True


def test_failed_final_commit_keeps_the_request_id(app, db, monkeypatch, caplog):
    """The view succeeded and the commit fails: the 5xx still carries X-Request-ID, the same
    id as in its details and in the log line."""
    from flask import Blueprint
    from sqlalchemy.exc import SQLAlchemyError

    from app import create_app
    from app.identity.models import User
    from config import TestConfig

    fresh = create_app(TestConfig())  # the shared app has served requests: routes are frozen
    bp = Blueprint("commit_fails", __name__)

    @bp.post("/write")
    def write():
        db.session.add(User(openid="never-committed"))
        return {"ok": True}

    fresh.register_blueprint(bp)

    def failing_commit():
        raise SQLAlchemyError("disk full")

    with fresh.app_context():
        monkeypatch.setattr(db.session, "commit", failing_commit)
        response = fresh.test_client().post("/write", headers={"X-Request-ID": "client-chosen-1"})
    assert response.status_code == 500 and error_code(response) == "INTERNAL_ERROR"
    server_id = response.headers["X-Request-ID"]
    assert response.get_json()["error"]["details"]["request_id"] == server_id != "client-chosen-1"
    assert any(getattr(r, "request_id", None) == server_id for r in caplog.records)
    assert db.session.query(User).filter_by(openid="never-committed").count() == 0


def test_query_form_and_path_text_obey_the_same_rule(client, admin, shop):
    """A NUL or control character in a query string, a multipart field or a path segment is
    refused before it reaches the database (PostgreSQL refuses NUL in text outright)."""
    query = client.get("/api/v1/pledge-templates?region=45%0003")
    assert query.status_code == 422 and error_code(query) == "TEXT_INVALID_CHARACTERS"
    dated = client.get("/api/v1/activities?from=2026-01-01%C2%85", headers=admin.headers)
    assert dated.status_code == 422 and error_code(dated) == "TEXT_INVALID_CHARACTERS"
    path = client.get("/api/v1/public/stalls/ab%00cd")
    assert path.status_code == 404 and error_code(path) == "STALL_NOT_FOUND"
    market, manager, stalls, login, merchant_id = shop.held_stall()
    form = shop.upload(login, merchant_id, number="JY1450403\x00123")
    assert form.status_code == 422 and error_code(form) == "TEXT_INVALID_CHARACTERS"
