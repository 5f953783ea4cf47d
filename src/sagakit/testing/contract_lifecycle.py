"""Contract: closing a store answers every write it accepted, and keeps what it committed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ..store.base import SagaStore
from .contract_records import new_saga, started


class LifecycleContract:
    """``close()`` drains: a write accepted before it is committed and its caller answered."""

    persistent: bool = True

    async def make_store(self, tmp_path: Path) -> SagaStore:
        """Return a new, unopened store with nothing in it."""
        raise NotImplementedError

    async def test_close_commits_and_answers_every_accepted_write(self, tmp_path: Path) -> None:
        # Given many creations in flight, some of them already being written
        store = await self.make_store(tmp_path)
        await store.open()
        records = [new_saga(f"drain-{i}") for i in range(600)]
        writes = [asyncio.ensure_future(store.create(r, started(r))) for r in records]
        for _ in range(3):
            await asyncio.sleep(0)  # let the first batch reach the database
        # When the store is closed
        await store.close()
        # I expect every caller answered (none left waiting) and every saga created
        done, pending = await asyncio.wait(writes, timeout=30)
        assert not pending, f"{len(pending)} writes never answered after close()"
        assert all(task.result()[1] for task in done)
        if not self.persistent:
            return
        reopened = await self.make_store(tmp_path)
        await reopened.open()
        try:
            for record in records[:: len(records) // 10]:
                assert await reopened.get(record.id) is not None, record.id
        finally:
            await reopened.close()

    async def test_data_survives_reopening(self, tmp_path: Path) -> None:
        if not self.persistent:
            pytest.skip("this store keeps nothing across close()")
        store = await self.make_store(tmp_path)
        await store.open()
        record = new_saga("keep", data={"k": "v"})
        await store.create(record, started(record))
        await store.close()
        reopened = await self.make_store(tmp_path)
        await reopened.open()
        try:
            got = await reopened.get("keep")
            assert got is not None and got.data == {"k": "v"}
            assert len(await reopened.events("keep")) == 1
        finally:
            await reopened.close()
