"""R5: schemathesis generates requests for every operation in /api/v1/openapi.json and sends
them through the app, logged in as an administrator over demo data, with every response check
schemathesis has: no 5xx, statuses, content types, headers and bodies as documented, auth
enforced as declared, unsupported methods refused, malformed requests (negative generation)
rejected, and schema-valid requests never refused as malformed. Every error is the envelope.

Schema-valid data may still break a domain rule (a USCC's checksum, a reason a refusal needs,
a WeChat code that is not valid): those answer with their own codes, and schemathesis's
positive_data_acceptance, which only knows statuses, is replaced by the check below that
knows the codes.

The suite runs a handful of cases per operation and mode; `make fuzz` runs a few hundred
(FUZZ_EXAMPLES=300)."""
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "6"))

# Refusals that say "this request does not match the document".
MALFORMED = {"VALIDATION_ERROR", "BODY_REQUIRED", "INVALID_JSON", "JSON_TOO_DEEP", "NUMBER_OUT_OF_RANGE",
             "TEXT_INVALID_CHARACTERS", "BAD_REQUEST", "UNSUPPORTED_MEDIA_TYPE"}


@schemathesis.check
def schema_valid_requests_are_not_refused_as_malformed(ctx, response, case):
    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
        return None
    if response.status_code in (400, 415, 422):
        code = response.json()["error"]["code"]
        if code in MALFORMED:
            raise AssertionError(f"a request the document allows was refused as malformed: {code} "
                                 f"{response.json()['error']['details']}")
    return None


COMMON = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_headers_conformance, checks.response_schema_conformance,
          checks.missing_required_header, checks.unsupported_method]
CHECKS = {
    GenerationMode.POSITIVE: COMMON + [checks.ignored_auth, schema_valid_requests_are_not_refused_as_malformed],
    # Negative cases may carry a generated Authorization header that the fixture replaces with a
    # valid one, which ignored_auth then reads as "generated auth accepted": auth is proven in
    # the positive run.
    GenerationMode.NEGATIVE: COMMON + [checks.negative_data_rejection],
}


@pytest.fixture
def admin_headers(app, auth):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["seed", "demo"]).exit_code == 0
    return auth.login("fuzz-admin", role="admin").headers


def _operations(app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_generated_requests_match_the_document(app, admin_headers, mode):
    operations = _operations(app)
    assert len(operations) >= 5
    failures = []
    for operation in operations:
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def exercise(case):
            # As the document declares it, so the auth probes can take it away.
            case.headers = {**(case.headers or {}), **admin_headers}
            response = case.call()
            case.validate_response(response, checks=CHECKS[mode])
            if response.status_code >= 400:
                body = response.json()
                assert set(body) == {"error"} and {"code", "message", "details"} <= set(body["error"])

        try:
            exercise()
        except Unsatisfiable:
            # Nothing about the operation can be made invalid (a path of one free-form token):
            # there is no negative case to send.
            assert mode == GenerationMode.NEGATIVE, operation.path
        except (Exception, BaseExceptionGroup) as exc:  # collect all, report together
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:900]}")
    assert not failures, "\n\n".join(failures)
