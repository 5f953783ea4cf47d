"""Recovery: how fast a fresh worker finishes sagas a killed worker left behind.

``shape=midway`` writes each saga as a worker killed after its second checkpoint leaves it:
RUNNING at step index 2, its first three events written, its lease expired. ``shape=pending``
enqueues them with ``Runtime.start`` (PENDING, never run). Then a fresh store and a
``sagakit.Worker(concurrency=workers).run(burst=True)`` drain them all; that drain is timed.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import sagakit as sk
from bench.context import CaseContext
from bench.stats import rate
from bench.workload import SAGA_NAME, STEPS, make_saga, step_output
from sagakit.leases import LeaseKeeper
from sagakit.store.records import utcnow

_DONE_BEFORE_CRASH = 2
_CHUNK = 256


def _midway(saga: sk.Saga, i: int) -> tuple[sk.SagaRecord, list[sk.SagaEvent]]:
    now = utcnow()
    data: dict[str, Any] = {"i": i}
    for index in range(_DONE_BEFORE_CRASH):
        data.update(step_output(index))
    saga_id = f"crashed-{i}"
    events = [sk.SagaEvent(saga_id=saga_id, seq=1, type="saga_started", at=now)]
    for index in range(_DONE_BEFORE_CRASH):
        events.append(
            sk.SagaEvent(
                saga_id=saga_id,
                seq=index + 2,
                type="step_completed",
                step=f"step{index}",
                attempt=1,
                at=now,
                output=step_output(index),
            )
        )
    record = sk.SagaRecord(
        id=saga_id,
        saga_type=SAGA_NAME,
        status=sk.SagaStatus.RUNNING,
        data=data,
        current_step=saga.steps[_DONE_BEFORE_CRASH].name,
        step_index=_DONE_BEFORE_CRASH,
        attempt=1,
        version=1 + _DONE_BEFORE_CRASH,
        lease_owner="killed-worker:1:deadbeef",
        lease_expires_at=now - timedelta(seconds=60),
        definition_hash=saga.definition_hash,
        last_seq=len(events),
        created_at=now,
        updated_at=now,
    )
    return record, events


async def _leave_midway(url: str, saga: sk.Saga, n: int) -> None:
    store = sk.open_store(url)
    await store.open()
    try:
        for first in range(0, n, _CHUNK):
            writes = [_midway(saga, i) for i in range(first, min(first + _CHUNK, n))]
            await asyncio.gather(*(store.create(rec, events) for rec, events in writes))
    finally:
        await store.close()


async def _leave_pending(url: str, saga: sk.Saga, n: int) -> None:
    async with sk.Runtime(url, sagas=[saga], workers=0) as rt:
        for first in range(0, n, _CHUNK):
            await asyncio.gather(
                *(rt.start(SAGA_NAME, {"i": i}) for i in range(first, min(first + _CHUNK, n)))
            )


async def recovery(ctx: CaseContext) -> dict[str, Any]:
    """Leave ``sagas`` sagas as ``shape`` says, then time a fresh worker draining them."""
    n, workers, shape = ctx.number("sagas"), ctx.number("workers"), ctx.text("shape")
    saga = make_saga()
    db = ctx.database("recovery")
    t_setup = time.perf_counter()
    if shape == "midway":
        await _leave_midway(db.sagakit_url, saga, n)
        steps_left = STEPS - _DONE_BEFORE_CRASH
    else:
        await _leave_pending(db.sagakit_url, saga, n)
        steps_left = STEPS
    setup_seconds = time.perf_counter() - t_setup

    store = sk.open_store(db.sagakit_url)
    t0 = time.perf_counter()
    await store.open()
    opened = time.perf_counter()
    keeper = LeaseKeeper(store, f"bench-recovery-{shape}", lease_seconds=30.0)
    worker = sk.Worker(store, {SAGA_NAME: saga}, leases=keeper, concurrency=workers)
    try:
        counters = await worker.run(burst=True)
        seconds = time.perf_counter() - t0
        by_status = await store.count_by_status()
    finally:
        await keeper.stop()
        await store.close()
    completed = by_status.get(sk.SagaStatus.COMPLETED, 0)
    if completed != n or counters.completed != n:
        raise RuntimeError(f"recovery finished {completed}/{n} sagas: {by_status}, {counters}")
    return {
        "shape": shape,
        "sagas": n,
        "workers": workers,
        "steps_left_per_saga": steps_left,
        "setup_seconds": round(setup_seconds, 3),
        "store_open_seconds": round(opened - t0, 4),
        "seconds": round(seconds, 4),
        "sagas_per_s": rate(n, seconds),
        "steps_per_s": rate(n * steps_left, seconds),
        "worker_counters": {"claimed": counters.claimed, "completed": counters.completed},
    }
