"""Sagas whose worker died: recovered in quarantine groups, alone after a second death."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sagakit as sk
from sagakit.quarantine import Company, Quarantine
from sagakit.store.records import utcnow

S = sk.SagaStatus


class Overlap:
    """Counts how many steps run at once, and which sagas ran beside which."""

    def __init__(self) -> None:
        self.running: set[str] = set()
        self.peak = 0
        self.beside: dict[str, set[str]] = {}

    async def step(self, ctx: sk.StepContext) -> None:
        self.running.add(ctx.saga_id)
        self.peak = max(self.peak, len(self.running))
        for saga_id in self.running:
            self.beside.setdefault(saga_id, set()).update(self.running - {saga_id})
        await asyncio.sleep(0.01)  # long enough for the other claimed sagas to start
        self.running.discard(ctx.saga_id)


def overlap_saga(overlap: Overlap) -> sk.Saga:
    saga = sk.Saga("q")
    saga.step(overlap.step, name="work")
    return saga


def record(saga: sk.Saga, saga_id: str, *, crashes: int, abandoned: bool) -> sk.SagaRecord:
    """A saga as a killed worker leaves it (``abandoned``), or one handed back unstarted."""
    now = utcnow()
    return sk.SagaRecord(
        id=saga_id,
        saga_type=saga.name,
        status=S.RUNNING if abandoned else S.PENDING,
        data={},
        current_step="work",
        step_index=0,
        attempt=1,
        crashes=crashes,
        lease_owner="killed-worker:1:dead" if abandoned else None,
        lease_expires_at=now - timedelta(seconds=60) if abandoned else None,
        definition_hash=saga.definition_hash,
        created_at=now,
        updated_at=now,
    )


async def test_many_sagas_left_by_a_dead_worker_recover_together(store_url: str) -> None:
    # Given 40 sagas a killed worker left running
    overlap = Overlap()
    saga = overlap_saga(overlap)
    async with sk.Runtime(store_url, sagas=[saga], workers=0) as rt:
        for i in range(40):
            await rt.store.create(record(saga, f"c{i}", crashes=0, abandoned=True), [])
        # When one worker with 8 slots recovers them
        worker = sk.Worker(rt.store, rt.sagas, leases=rt.leases, concurrency=8)
        counters = await worker.run(burst=True)
        # I expect them run 8 at a time in quarantine (suspects beside suspects), all done
        assert counters.completed == 40
        assert overlap.peak == 8
        for i in range(40):
            final = await rt.get(f"c{i}")
            assert (final.status, final.crashes, final.attempt) == (S.COMPLETED, 0, 1)


async def test_a_saga_that_died_in_quarantine_runs_alone(store_url: str) -> None:
    # Given one saga whose worker died twice (once in quarantine) and twelve clean ones
    overlap = Overlap()
    saga = overlap_saga(overlap)
    async with sk.Runtime(store_url, sagas=[saga], workers=0) as rt:
        await rt.store.create(record(saga, "twice", crashes=1, abandoned=True), [])
        for i in range(12):
            await rt.start("q", {}, saga_id=f"n{i}")
        worker = sk.Worker(rt.store, rt.sagas, leases=rt.leases, concurrency=4)
        counters = await worker.run(burst=True)
        # I expect every saga completed, the suspect with no saga beside it
        assert counters.completed == 13
        assert overlap.beside.get("twice", set()) == set()
        assert overlap.peak == 4
        assert (await rt.get("twice")).crashes == 0


async def test_suspects_never_run_beside_clean_sagas(store_url: str) -> None:
    overlap = Overlap()
    saga = overlap_saga(overlap)
    async with sk.Runtime(store_url, sagas=[saga], workers=0) as rt:
        for i in range(10):
            await rt.start("q", {}, saga_id=f"n{i}")
        for i in range(10):
            await rt.store.create(record(saga, f"s{i}", crashes=0, abandoned=True), [])
        worker = sk.Worker(rt.store, rt.sagas, leases=rt.leases, concurrency=6)
        counters = await worker.run(burst=True)
        assert counters.completed == 20
        for i in range(10):
            assert all(other.startswith("s") for other in overlap.beside.get(f"s{i}", set()))


def test_the_most_suspect_kind_in_a_batch_goes_first() -> None:
    saga = sk.Saga("q")
    saga.step(lambda ctx: None, name="work")
    clean = record(saga, "a", crashes=0, abandoned=False)
    suspect = record(saga, "b", crashes=1, abandoned=False)
    alone1 = record(saga, "c", crashes=2, abandoned=False)
    alone2 = record(saga, "d", crashes=3, abandoned=False)
    q = Quarantine()
    start, back = q.sort([clean, suspect, alone1, alone2], running=0)
    assert [r.id for r in start] == ["c"] and q.company is Company.ALONE
    assert [r.id for r in back] == ["a", "b", "d"]
    assert q.holds_claims(running=1)
    # the waiting suspects come next, the one that runs alone first
    assert q.take_waiting(free=4) == ["d"]
    assert q.take_waiting(free=4) == ["b"]
    assert not q.holds_claims(running=0)


async def test_a_worker_dying_in_the_first_step_costs_a_crash_not_an_attempt() -> None:
    # a saga claimed while PENDING is still PENDING in the store while its first step runs
    store = sk.MemoryStore()
    saga = sk.Saga("q")
    saga.step(lambda ctx: None, name="work")
    now = utcnow()
    first = record(saga, "first", crashes=0, abandoned=False)
    await store.create(first, [])
    [taken] = await store.claim(
        "dead-worker", now=now, lease_until=now + timedelta(seconds=1), limit=1
    )
    later = now + timedelta(seconds=5)
    [again] = await store.claim(
        "next", now=later, lease_until=later + timedelta(seconds=30), limit=1
    )
    # the next worker counts the death, and runs the same attempt again
    assert (again.crashes, again.attempt) == (1, taken.attempt)
