"""A process frozen inside a transaction must not keep its sagas from being recovered."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

import sagakit as sk
from sagakit.store.records import utcnow
from sagakit.store.sql import SqlStore

from ..servers import store_url_for


@pytest.fixture(params=["postgres", "mariadb"])
def server_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with store_url_for(request.param, tmp_path) as url:
        yield url


async def test_a_transaction_left_open_is_ended_by_the_server_and_the_saga_claimed(
    server_url: str,
) -> None:
    saga = sk.Saga("one")

    @saga.step
    async def only(ctx: sk.StepContext) -> None:
        return None

    url = f"{server_url}{'&' if '?' in server_url else '?'}idle_transaction_timeout=1"
    async with sk.Runtime(url, sagas=[saga], workers=0) as rt:
        await rt.start("one", saga_id="held")
        store = rt.store
        assert isinstance(store, SqlStore)
        t = store.tables.instances
        table = f"{t.schema}.{t.name}" if t.schema else t.name
        # Given a connection of the store that locked the saga's row and then went silent
        frozen = await store.engine.connect()
        await frozen.begin()
        await frozen.execute(text(f"SELECT id FROM {table} WHERE id = 'held' FOR UPDATE"))
        try:
            # When another worker looks for work
            deadline = time.monotonic() + 30
            claimed: list[sk.SagaRecord] = []
            while not claimed:
                assert time.monotonic() < deadline, "the locked saga was never claimed"
                now = utcnow()
                claimed = await store.claim(
                    "rescuer", now=now, lease_until=now + timedelta(seconds=5), limit=1
                )
                if not claimed:
                    await asyncio.sleep(0.2)
            # I expect the server ended the idle transaction, and the saga was claimed
            assert [r.id for r in claimed] == ["held"]
        finally:
            # the server already ended it: that is the point
            with contextlib.suppress(Exception):
                await frozen.close()
