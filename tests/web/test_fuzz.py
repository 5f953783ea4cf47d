"""Fuzz every documented operation from the OpenAPI schema: no input may yield a 500.

Schemathesis turns each operation into a Hypothesis strategy of valid and invalid
requests; every response is checked against the schema too (status documented, body
matching its model, content type). Its pytest loader for fixtures does not run under
pytest 9, so the strategies are driven here with ``@given`` per operation.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
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

    app = seeded_app(store_url)
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    shutdown_lifespans()  # schemathesis ran the app's lifespan: close the runtime now


def seeded_app(store_url: str) -> Any:
    """The app over a store holding a few finished sagas, its runtime not yet open."""

    async def seed() -> None:
        async with sk.Runtime(store_url, sagas=sagas(), workers=1, poll_interval=0.05) as rt:
            await populate(rt)

    asyncio.run(seed())
    runtime = sk.Runtime(store_url, sagas=sagas(), workers=0)
    settings_ = WebSettings(tokens=TOKENS, read_open=True)  # type: ignore[arg-type]
    return create_app(runtime, settings=settings_)


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


#: Leaves no store can hold, and shapes that break naive JSON handling.
HOSTILE_TEXT = st.sampled_from(["\ud800", "a\x00b", "\udfff tail", "é", "e\u0301", "x" * 300])
HOSTILE_LEAF = st.one_of(
    HOSTILE_TEXT,
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([float("nan"), float("inf"), 1e308]),
    st.none(),
)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@given(
    key=HOSTILE_TEXT,
    leaf=HOSTILE_LEAF,
    depth=st.sampled_from([0, 70, 5000]),
    where=st.sampled_from(["context", "id", "saga_type", "reason"]),
)
@settings(max_examples=EXAMPLES * 2, deadline=None, suppress_health_check=list(HealthCheck))
def test_hostile_bodies_are_refused_never_a_server_error(
    hostile_client: httpx.Client, key: str, leaf: object, depth: int, where: str
) -> None:
    value = json.dumps(leaf, allow_nan=True)
    if depth:
        value = nested(depth)
    if where == "reason":
        response = hostile_client.post(
            "/api/sagas/ok-1/pause",
            content='{"reason": ' + value + "}",
            headers={**ALICE, "content-type": "application/json"},
        )
    else:
        body = {
            "context": '{"saga_type":"order","context":{' + json.dumps(key) + ":" + value + "}}",
            "id": '{"saga_type":"order","id":' + value + "}",
            "saga_type": '{"saga_type":' + value + "}",
        }[where]
        response = hostile_client.post(
            "/api/sagas", content=body, headers={**ALICE, "content-type": "application/json"}
        )
    assert response.status_code < 500 or response.status_code == 503, response.text


@pytest.fixture
def hostile_client(store_url: str) -> Iterator[httpx.Client]:
    """A client on an app whose store holds the known sagas."""
    from starlette.testclient import TestClient

    with TestClient(seeded_app(store_url), raise_server_exceptions=False) as client:
        yield client
