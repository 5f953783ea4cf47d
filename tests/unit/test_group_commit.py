"""Group commit: one bad write in a shared transaction fails alone, the others land."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import sagakit as sk
from sagakit.store.records import Checkpoint, SagaEvent
from sagakit.store.sql import SqlStore
from sagakit.testing.contract_records import advanced, new_saga, started


async def test_a_bad_write_in_a_batch_is_retried_alone_and_fails_alone(store_url: str) -> None:
    if store_url.startswith("memory://"):
        pytest.skip("the memory store writes one checkpoint at a time")
    store = sk.open_store(store_url)
    assert isinstance(store, SqlStore)
    await store.open()
    try:
        records = [new_saga(f"g{i}") for i in range(20)]
        for r in records:
            await store.create(r, started(r))
        # Given 20 checkpoints committed together, one of which repeats an event seq
        writes = []
        for i, record in enumerate(records):
            nxt, expected, events = advanced(record)
            if i == 7:
                events = [SagaEvent(saga_id=record.id, seq=1, type="step_completed")]
            writes.append(store.commit(Checkpoint(nxt, expected, events)))
        flushes: list[tuple[int, bool]] = []  # (writes in the transaction, shared?)
        real_flush = store._flush_batch

        async def spy(batch: list[Any], *, isolate: bool) -> None:
            flushes.append((len(batch), isolate))
            await real_flush(batch, isolate=isolate)

        store._flush_batch = spy  # type: ignore[method-assign]
        commits_before = store.commits
        async with store._writer_lock:  # hold the writer so that the checkpoints queue up
            pending = [asyncio.ensure_future(w) for w in writes]
            for _ in range(5):
                await asyncio.sleep(0)
        results = await asyncio.gather(*pending, return_exceptions=True)
        # I expect only that one refused, every other checkpoint written, in few commits
        failed = [i for i, r in enumerate(results) if isinstance(r, BaseException)]
        assert failed == [7], results
        assert isinstance(results[7], sk.StoreError)
        assert not isinstance(results[7], sk.StoreUnavailable)
        for i, record in enumerate(records):
            got = await store.get(record.id)
            assert got is not None and got.version == (1 if i == 7 else 2), i
        # the shared transaction was tried, then each of its writes alone
        assert any(size > 1 and shared for size, shared in flushes), flushes
        assert any(size == 1 and not shared for size, shared in flushes), flushes
        assert store.commits - commits_before <= 1 + len(records)
    finally:
        await store.close()
