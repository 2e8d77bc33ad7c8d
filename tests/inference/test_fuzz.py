"""Schema-based fuzzing of the scoring API from its own OpenAPI document: whatever
schemathesis generates, valid or not, the API never answers with a server error."""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.inference.conftest import API_KEY, ServingWorld

pytestmark = pytest.mark.integration


def test_no_generated_request_gets_a_server_error(world: ServingWorld) -> None:
    schema = schemathesis.openapi.from_url(f"{world.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    cases = st.one_of(
        [
            operation.as_strategy(mode)
            for operation in operations
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        ]
    )
    statuses: Counter = Counter()

    @given(case=cases)
    @settings(
        max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def no_server_error(case) -> None:
        response = case.call(base_url=world.url, headers={"X-API-Key": API_KEY})
        statuses[response.status_code] += 1
        assert response.status_code < 500, (case.method, case.path, case.body, response.text)

    no_server_error()
    # Both sides were exercised: scored requests and rejected ones.
    assert statuses[200] > 0 and statuses[422] > 0, statuses
