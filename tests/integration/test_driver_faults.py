"""Real server errors are read by their codes: a deadlock is a conflict, a kill an outage."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

import sagakit as sk
from sagakit.errors import StoreUnavailable, TransactionConflict
from sagakit.store import idle_ping
from sagakit.store.sql import SqlStore
from sagakit.store.sql.core import Fault

from ..servers import store_url_for


@pytest.fixture(params=["postgres", "mariadb"])
def server_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with store_url_for(request.param, tmp_path) as url:
        yield url


async def _open(url: str) -> tuple[SqlStore, str]:
    store = sk.open_store(url)
    assert isinstance(store, SqlStore)
    await store.open()
    t = store.tables.instances
    return store, (f"{t.schema}.{t.name}" if t.schema else t.name)


async def _lock(conn: AsyncConnection, table: str, saga_id: str) -> None:
    await conn.execute(text(f"UPDATE {table} SET attempt = attempt + 1 WHERE id = '{saga_id}'"))


async def test_a_real_deadlock_is_a_conflict_to_retry_at_once(server_url: str) -> None:
    store, table = await _open(server_url)
    try:
        # Given two sagas' rows and two transactions that take them in opposite orders
        await store.create(sk.SagaRecord(id="a", saga_type="x"))
        await store.create(sk.SagaRecord(id="b", saga_type="x"))
        one, two = await store.engine.connect(), await store.engine.connect()
        await one.begin()
        await two.begin()
        await _lock(one, table, "a")
        await _lock(two, table, "b")
        # When each waits for the other's row
        results = await asyncio.gather(
            _lock(one, table, "b"), _lock(two, table, "a"), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, DBAPIError)]
        for conn in (one, two):
            await conn.rollback()
            await conn.close()
        # I expect the server to roll one back, and the store to call that a conflict
        assert len(errors) == 1, results
        assert isinstance(store._translate(errors[0], "testing"), TransactionConflict)
        # by the error's code (SQLSTATE 40P01, errno 1213), not by its wording
        assert store._fault(errors[0].orig) is Fault.CONFLICT
    finally:
        await store.close()


async def test_a_connection_the_server_killed_is_an_outage(server_url: str) -> None:
    store, _ = await _open(server_url)
    try:
        victim = await store.engine.connect()
        killer = await store.engine.connect()
        postgres = store.engine.dialect.name == "postgresql"
        me = "SELECT pg_backend_pid()" if postgres else "SELECT CONNECTION_ID()"
        pid = (await victim.execute(text(me))).scalar_one()
        # When an operator ends the session on the server
        kill = f"SELECT pg_terminate_backend({pid})" if postgres else f"KILL CONNECTION {pid}"
        await killer.execute(text(kill))
        await killer.close()
        with pytest.raises(DBAPIError) as raised:
            await victim.execute(text("SELECT 1"))
        with contextlib.suppress(Exception):  # the connection is gone either way
            await victim.close()
        # I expect "unavailable, retry later", not a permanent error
        assert isinstance(store._translate(raised.value, "testing"), StoreUnavailable)
    finally:
        await store.close()


@pytest.mark.parametrize("ping", [True, False])
async def test_an_idle_pooled_connection_the_server_killed_is_replaced_before_a_read(
    server_url: str, ping: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every checkout of a used connection counts as "after a quiet spell"
    monkeypatch.setattr(idle_ping, "IDLE_SECONDS", 0.0)
    separator = "&" if "?" in server_url else "?"
    store, _ = await _open(f"{server_url}{separator}pool_pre_ping={str(ping).lower()}")
    try:
        # Given a saga, and the pooled connection that read it
        await store.create(sk.SagaRecord(id="idle", saga_type="x"))
        postgres = store.engine.dialect.name == "postgresql"
        me = "SELECT pg_backend_pid()" if postgres else "SELECT CONNECTION_ID()"
        (row,) = await store._read(text(me))
        # When the server ends that connection while it sits in the pool (an operator's
        # own session does it: the pool would hand the victim itself out again)
        operator, _ = await _open(server_url)
        kill = f"SELECT pg_terminate_backend({row[0]})" if postgres else f"KILL CONNECTION {row[0]}"
        async with operator.engine.connect() as conn:
            await conn.execute(text(kill))
        await operator.close()
        # I expect the next read to find the saga on a fresh connection, with the ping;
        # without it, to meet the dead connection (so the ping is what saves the read)
        if ping:
            record = await store.get("idle")
            assert record is not None and record.id == "idle"
        else:
            with pytest.raises(StoreUnavailable):
                await store.get("idle")
    finally:
        await store.close()
