"""The API against its own schema (proof issue, security): schemathesis generates requests for every
operation of /api/schema/ and sends them to the Django app in-process (WSGI), as a partner system, a
counter clerk and a citizen, each with a token.

What must hold for every answer: no server error (5xx); a status code the schema documents for the
operation; the documented content type (problem+json for errors, the Contracts of domain.md); a body that
conforms to the documented schema. Bounded for CI: a few examples per operation, no deadline, derandomized
(the same examples every run).
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from portal.wsgi import application

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 10

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
# Bounded for CI: the schema's examples and Hypothesis' generated cases. The coverage phase (every boundary
# value of every field, ~150 requests an operation here) is left to a run by hand: `schemathesis run`.
schema.config.phases.coverage.enabled = False


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Django closes the database connection as a request starts and finishes (close_old_connections); inside
    the test's transaction that would end it. Django's own test client unhooks it the same way while it runs."""
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (signals.request_started, signals.request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def api_tokens(citizen_a, citizen_a_family, binding_active, clerk_x, partner_token) -> dict[str, str]:
    """One token per kind of caller; A has a family binding, so lists and records are not all empty."""
    binding_active(citizen_a.person, citizen_a_family["parent"])
    return {
        "partner": partner_token,
        "clerk": Token.objects.create(user=clerk_x).key,
        "citizen": Token.objects.create(user=citizen_a).key,
    }


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_schema(case, api_tokens):
    """Every generated request, as each caller: no 5xx, documented status, content type and body."""
    for caller, token in api_tokens.items():
        headers = {"Authorization": f"Token {token}"}
        try:
            case.call_and_validate(headers=headers, checks=CHECKS)
        except Exception as failure:
            failure.add_note(f"as the {caller}")
            raise
