"""schemathesis against /api/schema/, authenticated as each role: every operation, generated requests (valid and
not), no 5xx and every answer matching the schema. `make test` runs a bounded number of examples per operation
(SHELFWISE_FUZZ_EXAMPLES, default 2); `make fuzz` runs 100."""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from accounts.roles import Role
from tests.factories import UserFactory

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
EXAMPLES = int(os.environ.get("SHELFWISE_FUZZ_EXAMPLES", "2"))
ROLE_OF = {"annotator": Role.ANNOTATOR, "manager": Role.CATALOG_MANAGER, "admin": Role.ADMIN}


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """A WSGI request closes the database connection when it finishes (close_old_connections), which would end the
    test's transaction; Django's own test client unhooks it the same way."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(params=sorted(ROLE_OF))
def token(request, small_tree) -> str:
    user = UserFactory(username=f"fuzz-{request.param}", role=ROLE_OF[request.param])
    return Token.objects.create(user=user).key


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much, HealthCheck.too_slow],
)
def test_no_operation_answers_5xx_or_off_schema(case, token, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):  # no job reaches a worker from a generated request
        case.call_and_validate(
            headers={"Authorization": f"Token {token}"},
            checks=[not_a_server_error, response_schema_conformance],
        )
