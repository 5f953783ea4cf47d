"""start/wait with in-process workers, burst mode counters, and operator actions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

import sagakit as sk

S = sk.SagaStatus


def make_saga(log: list[str], behaviour: dict[str, Any]) -> sk.Saga:
    """Two steps; ``behaviour`` can make a step or compensation fail until told otherwise."""
    saga = sk.Saga("op", retry=sk.Retry(max_attempts=2, initial=0.001, jitter=0))

    @saga.step
    async def reserve(ctx: sk.StepContext) -> dict[str, Any]:
        log.append("reserve")
        return {"reserved": True}

    @reserve.compensation
    async def unreserve(ctx: sk.StepContext) -> None:
        log.append("unreserve")
        if behaviour.get("unreserve_fails"):
            raise RuntimeError("inventory service down")

    @saga.step
    async def charge(ctx: sk.StepContext) -> dict[str, Any]:
        log.append("charge")
        if "charge_started" in behaviour:
            behaviour["charge_started"].set()
        if behaviour.get("charge_waits"):
            await behaviour["charge_waits"].wait()
        if behaviour.get("charge_fails"):
            raise RuntimeError("card declined")
        return {"charged": True}

    return saga


@pytest.fixture
async def env(store_url: str) -> AsyncIterator[tuple[sk.Runtime, list[str], dict[str, Any]]]:
    log: list[str] = []
    behaviour: dict[str, Any] = {}
    async with sk.Runtime(store_url, sagas=[make_saga(log, behaviour)], workers=4) as rt:
        yield rt, log, behaviour


async def test_start_returns_at_once_and_a_worker_runs_the_saga(env: Any) -> None:
    rt, log, _ = env
    ids = [await rt.start("op", {"n": i}) for i in range(5)]
    results = [await rt.wait(i, timeout=30) for i in ids]
    assert all(r.status == S.COMPLETED for r in results)
    assert log.count("charge") == 5


async def test_start_with_an_existing_id_does_not_start_it_again(env: Any) -> None:
    rt, log, _ = env
    assert await rt.start("op", {}, saga_id="x") == "x"
    await rt.wait("x", timeout=30)
    assert await rt.start("op", {}, saga_id="x") == "x"
    # nothing was enqueued: a worker draining the store finds nothing to run
    drained = await sk.Worker(rt.store, rt.sagas, leases=rt.leases).run(burst=True)
    assert drained.claimed == 0
    assert log.count("reserve") == 1


async def test_wait_timeout_raises_and_the_saga_goes_on(env: Any) -> None:
    rt, _, behaviour = env
    gate = asyncio.Event()
    behaviour["charge_waits"] = gate
    saga_id = await rt.start("op", {})
    with pytest.raises(sk.SagaTimeout, match="still RUNNING"):
        await rt.wait(saga_id, timeout=0.2)
    gate.set()
    assert (await rt.wait(saga_id, timeout=30)).status == S.COMPLETED


async def test_retry_of_a_failed_saga_resumes_its_rollback(env: Any) -> None:
    rt, log, behaviour = env
    behaviour.update(charge_fails=True, unreserve_fails=True)
    failed = await rt.run("op", {}, saga_id="f")
    assert failed.status == S.FAILED
    # When the operator fixes the cause and retries
    behaviour["unreserve_fails"] = False
    after = await rt.retry("f", actor="alice", reason="inventory back up")
    assert after.status == S.COMPENSATING
    final = await rt.wait("f", timeout=30)
    # I expect the rollback finished and the action in the audit trail
    assert final.status == S.COMPENSATED
    audit = [e for e in await rt.history("f") if e.type == "operator_retry"]
    assert [(e.actor, e.reason) for e in audit] == [("alice", "inventory back up")]
    assert log.count("unreserve") == 3  # two failed attempts, then the retried one


async def test_pause_holds_a_saga_and_resume_lets_it_finish(env: Any) -> None:
    rt, log, behaviour = env
    gate = asyncio.Event()
    behaviour["charge_waits"] = gate
    behaviour["charge_started"] = started = asyncio.Event()
    saga_id = await rt.start("op", {})
    await started.wait()
    paused = await rt.pause(saga_id, actor="bob")
    assert (paused.status, paused.reason) == (S.PAUSED, sk.Reason.OPERATOR)
    gate.set()  # the step in flight ends; its checkpoint is refused (the saga is paused)
    assert rt.worker is not None
    while rt.worker.counters.lost == 0:  # the worker dropped it: refused, not written
        await asyncio.sleep(0)
    assert (await rt.get(saga_id)).status == S.PAUSED
    resumed = await rt.resume(saga_id, actor="bob")
    assert resumed.status == S.RUNNING
    final = await rt.wait(saga_id, timeout=30)
    assert final.status == S.COMPLETED
    assert log.count("charge") == 2  # re-run after resume: at least once
    types = [e.type for e in await rt.history(saga_id)]
    assert types.count("step_completed") == 2
    assert "operator_pause" in types and "operator_resume" in types


async def test_cancel_rolls_back_completed_steps(env: Any) -> None:
    rt, log, behaviour = env
    gate = asyncio.Event()
    behaviour["charge_waits"] = gate
    behaviour["charge_started"] = started = asyncio.Event()
    saga_id = await rt.start("op", {})
    await started.wait()
    await rt.cancel(saga_id, actor="carol", reason="customer asked")
    gate.set()
    final = await rt.wait(saga_id, timeout=30)
    assert (final.status, final.reason) == (S.COMPENSATED, sk.Reason.CANCELLED)
    assert log.count("unreserve") == 1


async def test_cancel_of_a_saga_with_nothing_done_compensates_at_once(store_url: str) -> None:
    async with sk.Runtime(store_url, sagas=[make_saga([], {})], workers=0) as rt:
        saga_id = await rt.start("op", {})
        result = await rt.cancel(saga_id)
        assert (result.status, result.reason) == (S.COMPENSATED, sk.Reason.CANCELLED)


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("retry", "cannot retry saga 'done': it is COMPLETED"),
        ("cancel", "cannot cancel saga 'done': it is COMPLETED"),
        ("pause", "pause applies to PENDING, RUNNING and COMPENSATING"),
        ("resume", "resume applies to PAUSED sagas only"),
        ("compensate", "compensate applies to PENDING, RUNNING, WAITING, PAUSED and FAILED"),
    ],
)
async def test_actions_that_make_no_sense_are_refused_with_the_state(
    env: Any, action: str, message: str
) -> None:
    rt, _, _ = env
    await rt.run("op", {}, saga_id="done")
    with pytest.raises(sk.OperatorActionRefused, match=message):
        await rt.act("done", action)
    assert (await rt.get("done")).status == S.COMPLETED


async def test_unknown_action_and_unknown_saga_are_named(env: Any) -> None:
    rt, _, _ = env
    with pytest.raises(sk.OperatorActionRefused, match="unknown action 'explode'"):
        await rt.act("x", "explode")
    with pytest.raises(sk.SagaNotFound, match="'missing'"):
        await rt.pause("missing")


async def test_burst_worker_drains_and_counts(store_url: str) -> None:
    log: list[str] = []
    saga = make_saga(log, {})
    failing = make_saga(log, {"charge_fails": True})
    failing.name = "failing"
    async with sk.Runtime(store_url, sagas=[saga, failing], workers=0) as rt:
        for i in range(6):
            await rt.start("op", {}, saga_id=f"ok{i}")
        for i in range(2):
            await rt.start("failing", {}, saga_id=f"bad{i}")
        worker = sk.Worker(rt.store, rt.sagas, leases=rt.leases, concurrency=3)
        counters = await worker.run(burst=True)
    assert (counters.completed, counters.compensated, counters.failed) == (6, 2, 0)
    assert counters.retried == 2  # each failing charge retried once before giving up
    assert counters.claimed == 8


async def test_forced_rollback_keeps_its_reason_across_pause_and_resume(store_url: str) -> None:
    behaviour: dict[str, Any] = {"charge_fails": True, "unreserve_fails": True}
    async with sk.Runtime(store_url, sagas=[make_saga([], behaviour)], workers=0) as rt:
        assert (await rt.run("op", {}, saga_id="r")).status == S.FAILED
        await rt.compensate("r", actor="dave", reason="roll back by hand")
        await rt.pause("r")
        resumed = await rt.resume("r")
        assert (resumed.status, resumed.reason) == (S.COMPENSATING, sk.Reason.COMPENSATE)
        behaviour["unreserve_fails"] = False
        await sk.Worker(rt.store, rt.sagas, leases=rt.leases).run(burst=True)
        final = await rt.get("r")
        assert (final.status, final.reason) == (S.COMPENSATED, sk.Reason.COMPENSATE)
        started = [e for e in await rt.history("r") if e.type == "compensation_started"]
        assert [(e.reason, e.actor) for e in started] == [("error", None), ("compensate", "dave")]


async def test_wait_timeout_says_when_no_worker_runs_here(store_url: str) -> None:
    async with sk.Runtime(store_url, sagas=[make_saga([], {})], workers=0) as rt:
        saga_id = await rt.start("op", {})
        with pytest.raises(sk.SagaTimeout, match=r"no worker runs in this process"):
            await rt.wait(saga_id, timeout=0.05)
