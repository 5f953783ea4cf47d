"""A row no worker can run is set aside as PAUSED/corrupt; every other saga still runs."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

import sagakit as sk
from sagakit.store.sql import SqlStore


def two_steps() -> sk.Saga:
    saga = sk.Saga("two")

    @saga.step
    async def first(ctx: sk.StepContext) -> dict[str, Any]:
        return {"first": True}

    @saga.step
    async def second(ctx: sk.StepContext) -> dict[str, Any]:
        return {"second": True}

    return saga


#: What an import or a hand edit once put in a row, per backend ("*": every SQL store).
CORRUPTIONS = {
    "bad-reason": ("*", "reason = 'bogus'"),
    "huge-step": ("*", "step_index = 1000000000"),
    "list-data": ("*", "data = '[1, 2]'"),
    "text-version": ("sqlite", "version = 'abc'"),
    "text-attempt": ("sqlite", "attempt = 'x'"),
}


async def test_corrupt_rows_are_set_aside_and_the_others_complete(store_url: str) -> None:
    if store_url.startswith("memory://"):
        pytest.skip("the memory store keeps objects, not rows that can be corrupted")
    backend = "sqlite" if store_url.startswith("sqlite") else "server"
    planted = {k: sql for k, (where, sql) in CORRUPTIONS.items() if where in ("*", backend)}
    async with sk.Runtime(store_url, sagas=[two_steps()], workers=0) as rt:
        for i in range(10):
            await rt.start("two", saga_id=f"ok-{i}")
        for saga_id in planted:
            await rt.start("two", saga_id=saga_id)
        # Given rows planted directly in the database
        store = rt.store
        assert isinstance(store, SqlStore)
        t = store.tables.instances
        table = f"{t.schema}.{t.name}" if t.schema else t.name
        async with store.engine.begin() as conn:
            for saga_id, assignment in planted.items():
                await conn.execute(text(f"UPDATE {table} SET {assignment} WHERE id = '{saga_id}'"))
        # When a worker drains the store
        worker = sk.Worker(rt.store, rt.sagas, leases=rt.leases, concurrency=4)
        counters = await worker.run(burst=True)
        # I expect every healthy saga completed and each corrupt one paused, with why
        assert counters.completed == 10
        for i in range(10):
            assert (await rt.get(f"ok-{i}")).status == sk.SagaStatus.COMPLETED
        rows = {
            row[0]: row[1:]
            for row in (
                await _read(store, f"SELECT id, status, reason, error_message FROM {table}")
            )
        }
        for saga_id in planted:
            status, reason, message = rows[saga_id]
            assert (status, reason) == ("PAUSED", "corrupt"), (saga_id, rows[saga_id])
            assert message, saga_id


async def _read(store: SqlStore, sql: str) -> list[Any]:
    async with store.engine.connect() as conn:
        return list((await conn.execute(text(sql))).all())


def test_a_context_over_the_servers_packet_limit_says_size_and_limit(tmp_path: Any) -> None:
    from ..servers import store_url_for

    async def go(url: str) -> None:
        async with sk.Runtime(url, sagas=[two_steps()], workers=0) as rt:
            with pytest.raises(
                sk.StoreError, match=r"about 17,000,0\d\d bytes.*max_allowed_packet"
            ):
                await rt.start("two", {"blob": "x" * 17_000_000}, saga_id="huge")
            # the store is still usable afterwards
            await rt.start("two", {"small": True}, saga_id="small")
            assert (await rt.get("small")).context == {"small": True}

    import asyncio

    with store_url_for("mariadb", tmp_path) as url:
        asyncio.run(go(url))
