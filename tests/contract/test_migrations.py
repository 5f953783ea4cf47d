"""Upgrading an existing database keeps its sagas and fixes how keys compare."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sagakit as sk
from sagakit.store import migrate
from sagakit.store.sql import SqlStore
from sagakit.testing.contract_records import new_saga, started

from ..servers import store_url_for


def test_mariadb_database_created_at_0001_gets_binary_keys(tmp_path: Path) -> None:
    with store_url_for("mariadb", tmp_path) as url:
        asyncio.run(_upgrade_keeps_sagas_and_separates_lookalikes(url))


async def _upgrade_keeps_sagas_and_separates_lookalikes(url: str) -> None:
    # Given a database whose schema was created by 0001 (server-default collation)
    old = sk.open_store(url)
    assert isinstance(old, SqlStore)
    async with old.engine.begin() as conn:
        await conn.run_sync(migrate.upgrade, old.tables, "0001")
    await old.open(migrate=False)
    first = new_saga("Order-1", data={"customer": "alice"})
    await old.create(first, started(first))
    clash = new_saga("order-1", data={"customer": "bob"})
    _, created = await old.create(clash, started(clash))
    assert created is False  # the defect: another customer's saga came back
    await old.close()
    # When a new version opens it (migrating to head)
    store = sk.open_store(url)
    await store.open()
    try:
        # I expect the old saga intact and lookalike ids kept apart
        got = await store.get("Order-1")
        assert got is not None and got.data == {"customer": "alice"}
        stored, created = await store.create(clash, started(clash))
        assert created is True and stored.data == {"customer": "bob"}
        assert await store.get("order-1 ") is None
    finally:
        await store.close()
