"""R5: schemathesis generates requests for every operation in /api/v1/openapi.json and sends
them through the app, logged in as an administrator over demo data. No 5xx, every error in the
envelope, every response matching its documented schema.

The suite runs a handful of cases per operation; `make fuzz` runs a few hundred
(FUZZ_EXAMPLES=300)."""
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "6"))
CHECKS = [checks.not_a_server_error, checks.response_schema_conformance,
          checks.content_type_conformance]


@pytest.fixture
def admin_headers(app, auth):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["seed", "demo"]).exit_code == 0
    return auth.login("fuzz-admin", role="admin").headers


def _operations(app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def test_generated_requests_never_500_and_match_the_schema(app, admin_headers):
    operations = _operations(app)
    assert len(operations) >= 5
    failures = []
    for operation in operations:
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def exercise(case):
            response = case.call(headers=admin_headers)
            case.validate_response(response, checks=CHECKS)
            if response.status_code >= 400:
                body = response.json()
                assert set(body) == {"error"} and {"code", "message", "details"} <= set(body["error"])

        try:
            exercise()
        except Exception as exc:  # collect all, report together
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:600]}")
    assert not failures, "\n\n".join(failures)
