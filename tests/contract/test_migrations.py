"""Upgrading an existing database keeps its sagas and fixes how keys compare."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import sagakit as sk
from sagakit.store import migrate
from sagakit.store.records import utcnow
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
    table = old.tables.instances.name
    async with old.engine.begin() as conn:
        await conn.run_sync(migrate.upgrade, old.tables, "0001")
        await conn.execute(
            sa.text(
                f"INSERT INTO {table} (id, saga_type, status, data, created_at, updated_at) "
                "VALUES ('Order-1', 'order', 'COMPLETED', '{\"customer\": \"alice\"}', "
                "NOW(), NOW())"
            )
        )
        found = await conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE id = 'order-1 '"))
        assert found.scalar_one() == 1  # the defect: another customer's saga matches
    await old.engine.dispose()
    # When a new version opens it (migrating to head)
    store = sk.open_store(url)
    await store.open()
    try:
        # I expect the old saga intact and lookalike ids kept apart
        got = await store.get("Order-1")
        assert got is not None and got.data == {"customer": "alice"}
        clash = new_saga("order-1", data={"customer": "bob"})
        stored, created = await store.create(clash, started(clash))
        assert created is True and stored.data == {"customer": "bob"}
        assert await store.get("order-1 ") is None
    finally:
        await store.close()


def _shape(sync_conn: Any, tables: Any) -> dict[str, Any]:
    """Columns, indexes and keys of sagakit's tables, as the database reports them."""
    inspector = sa.inspect(sync_conn)
    shape: dict[str, Any] = {}
    for table in (tables.instances, tables.events, tables.outbox, tables.inbox):
        name, schema = table.name, tables.schema
        shape[name] = {
            # an added column comes last: compare columns, not their order
            "columns": sorted(
                (c["name"], str(c["type"]), c["nullable"])
                for c in inspector.get_columns(name, schema=schema)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(name, schema=schema)
            ),
            "primary_key": inspector.get_pk_constraint(name, schema=schema)["constrained_columns"],
            "unique": sorted(
                tuple(u["column_names"])
                for u in inspector.get_unique_constraints(name, schema=schema)
            ),
        }
    return shape


@pytest.mark.parametrize("backend", ["sqlite", "postgres", "mariadb"])
def test_a_database_upgraded_from_0001_has_the_schema_a_new_one_is_declared_with(
    backend: str, tmp_path: Path
) -> None:
    async def shapes(upgraded_url: str, fresh_url: str) -> tuple[Any, Any]:
        # Given a database created at 0001 and upgraded to head by opening the store
        old = sk.open_store(upgraded_url)
        assert isinstance(old, SqlStore)
        async with old.engine.begin() as conn:
            await conn.run_sync(migrate.upgrade, old.tables, "0001")
        await old.open()
        async with old.engine.connect() as conn:
            upgraded = await conn.run_sync(_shape, old.tables)
        await old.close()
        # and one created from schema.py as it stands
        new = sk.open_store(fresh_url)
        assert isinstance(new, SqlStore)
        async with new.engine.begin() as conn:
            await conn.run_sync(new.tables.metadata.create_all)
            fresh = await conn.run_sync(_shape, new.tables)
        await new.engine.dispose()
        return upgraded, fresh

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        store_url_for(backend, tmp_path / "a") as upgraded_url,
        store_url_for(backend, tmp_path / "b") as fresh_url,
    ):
        upgraded, fresh = asyncio.run(shapes(upgraded_url, fresh_url))
    # I expect the same tables, columns, types, indexes and keys
    assert upgraded == fresh


def test_mariadb_relay_claim_reads_pending_messages_not_the_retained_published_ones(
    tmp_path: Path,
) -> None:
    with store_url_for("mariadb", tmp_path) as url:
        asyncio.run(_claim_reads_only_pending(url))


async def _claim_reads_only_pending(url: str) -> None:
    store = sk.open_store(url)
    assert isinstance(store, SqlStore)
    await store.open()
    try:
        # Given 3,000 published messages kept for retention and 3 pending ones after them
        now = utcnow()
        o = store.tables.outbox
        row = {"topic": "t", "payload": {}, "created_at": now}
        async with store.engine.begin() as conn:
            await conn.execute(
                sa.insert(o),
                [
                    {**row, "saga_id": f"s{n}", "message_id": f"m{n}", "published_at": now}
                    for n in range(3000)
                ]
                + [
                    {**row, "saga_id": f"p{n}", "message_id": f"p{n}", "published_at": None}
                    for n in range(3)
                ],
            )
        # When a relay claims, the server counting the index entries its statements read
        before = await _rows_read(store)
        claimed = await store.claim_outbox(
            "relay", now=now, claim_until=now + timedelta(seconds=30), limit=10
        )
        read = await _rows_read(store) - before
        # I expect the pending messages, found without walking the published ones
        assert sorted(m.saga_id for m in claimed) == ["p0", "p1", "p2"]
        assert read < 300, f"the claim read {read} index entries for 3 pending messages"
    finally:
        await store.close()


async def _rows_read(store: SqlStore) -> int:
    """The server's count of rows read through indexes and scans, all sessions together."""
    async with store.engine.connect() as conn:
        found = await conn.execute(sa.text("SHOW GLOBAL STATUS LIKE 'Handler_read%'"))
        return sum(int(value) for _, value in found.all())
