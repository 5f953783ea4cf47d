"""``POST /api/events`` against SQLite and PostgreSQL: state machine instances over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

import sagakit as sk

from ..machines.test_state_machines import order_machine, shipping_saga
from .conftest import ALICE, client_for
from .test_api import field_of


@pytest.fixture
async def machine_client(store_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, sk.Runtime]]:
    definitions = [order_machine(), shipping_saga([])]
    async with (
        sk.Runtime(store_url, sagas=definitions, workers=0) as rt,
        client_for(rt, read_open=True) as client,
    ):
        yield client, rt


async def test_an_event_is_applied_once_and_the_instance_shows_in_the_api(
    machine_client: tuple[httpx.AsyncClient, sk.Runtime],
) -> None:
    client, rt = machine_client
    body = {"event": "OrderSubmitted", "data": {"order_id": "w-1", "total": 3}, "message_id": "a"}
    first = await client.post("/api/events", json=body, headers=ALICE)
    again = await client.post("/api/events", json=body, headers=ALICE)
    assert first.status_code == 200, first.text
    assert first.json()["outcome"] == "applied"
    assert first.json()["deliveries"] == [
        {
            "instance_id": "order:w-1",
            "outcome": "applied",
            "state": "Submitted",
            "previous": None,
            "error": None,
        }
    ]
    assert again.json()["outcome"] == "duplicate"
    listed = await client.get("/api/sagas", params={"type": "order"})
    [instance] = listed.json()["items"]
    assert instance["id"] == "order:w-1" and instance["status"] == "ACTIVE"
    assert (await rt.get("order:w-1")).data == {"total": 3}


async def test_bad_events_get_a_clear_4xx_naming_the_field(
    machine_client: tuple[httpx.AsyncClient, sk.Runtime],
) -> None:
    client, _ = machine_client
    unknown = await client.post("/api/events", json={"event": "Nope"}, headers=ALICE)
    assert unknown.status_code == 404 and unknown.json()["field"] == "body.event"
    no_key = await client.post(
        "/api/events", json={"event": "OrderSubmitted", "data": {"total": 1}}, headers=ALICE
    )
    assert no_key.status_code == 422 and field_of(no_key) == "body.data"
    assert "'order_id'" in no_key.text
    no_token = await client.post("/api/events", json={"event": "OrderSubmitted"})
    assert no_token.status_code == 401
    missing = await client.post(
        "/api/events", json={"event": "OrderShipped", "saga_id": "order:none"}, headers=ALICE
    )
    assert missing.status_code == 404 and missing.json()["field"] == "body.saga_id"
