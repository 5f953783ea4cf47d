"""Fuzz every documented operation from the OpenAPI schema: no input may yield a 500.

Schemathesis turns each operation into a Hypothesis strategy of valid and invalid
requests; every response is checked against the schema too (status documented, body
matching its model, content type). Its pytest loader for fixtures does not run under
pytest 9, so the strategies are driven here with ``@given`` per operation.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python.asgi import shutdown_lifespans

import sagakit as sk
from sagakit.web import WebSettings, create_app

from .conftest import ALICE, TOKENS, populate
from .sagas import sagas

#: Examples per operation (~7 operations, two backends: well under a minute); raise to dig deeper.
EXAMPLES = int(os.environ.get("SAGAKIT_FUZZ_EXAMPLES", "40"))

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def api_schema(store_url: str) -> Iterator[schemathesis.BaseSchema]:
    """The app's own OpenAPI schema, over a store holding a few finished sagas."""

    async def seed() -> None:
        async with sk.Runtime(store_url, sagas=sagas(), workers=1, poll_interval=0.05) as rt:
            await populate(rt)

    asyncio.run(seed())
    runtime = sk.Runtime(store_url, sagas=sagas(), workers=0)
    settings_ = WebSettings(tokens=TOKENS, read_open=True)  # type: ignore[arg-type]
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(runtime, settings=settings_))
    shutdown_lifespans()  # schemathesis ran the app's lifespan: close the runtime now


def requests_for(operation: schemathesis.APIOperation) -> st.SearchStrategy[schemathesis.Case]:
    """Valid and invalid requests, some aimed at sagas that exist."""
    options = [
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    ]
    if "{saga_id}" in operation.path:
        for saga_id in ("ok-1", "failed-3", "undone-2"):
            options.append(
                operation.as_strategy(GenerationMode.POSITIVE, path_parameters={"saga_id": saga_id})
            )
    return st.one_of(options)


def test_no_input_yields_a_server_error(api_schema: schemathesis.BaseSchema) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 7
    for operation in operations:

        @given(case=requests_for(operation))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=ALICE, checks=CHECKS)

        fuzz()
