"""The engine's behaviour, run on the memory and SQLite stores."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import pytest

import sagakit as sk
from sagakit.store.records import OutboxQuery, OutboxState

FAST = sk.Retry(max_attempts=3, initial=0.001, backoff=1.0, jitter=0)


def recording_saga(
    name: str = "s",
    *,
    steps: int = 3,
    fail: Callable[[str, int], bool] = lambda step, attempt: False,
    fail_compensation: Callable[[str, int], bool] = lambda step, attempt: False,
    log: list[str],
    **saga_kwargs: Any,
) -> sk.Saga:
    """A saga whose steps and compensations append to ``log`` and fail when told to."""
    saga = sk.Saga(name, retry=FAST, **saga_kwargs)
    for i in range(steps):
        step_name = f"s{i}"

        async def action(ctx: sk.StepContext, step_name: str = step_name) -> dict[str, Any]:
            log.append(f"do {step_name} #{ctx.attempt}")
            if fail(step_name, ctx.attempt):
                raise RuntimeError(f"{step_name} broke")
            return {step_name: ctx.attempt}

        async def undo(ctx: sk.StepContext, step_name: str = step_name) -> None:
            log.append(f"undo {step_name} #{ctx.attempt}")
            if fail_compensation(step_name, ctx.attempt):
                raise RuntimeError(f"undo {step_name} broke")

        saga.add(sk.Step(step_name, action, compensate=undo))
    return saga


@pytest.fixture
async def runtime(store_url: str) -> AsyncIterator[Callable[..., sk.Runtime]]:
    opened: list[sk.Runtime] = []

    def make(*sagas: sk.Saga, **kwargs: Any) -> sk.Runtime:
        rt = sk.Runtime(store_url, sagas=sagas, **kwargs)
        opened.append(rt)
        return rt

    yield make
    for rt in opened:
        await rt.close()


async def test_steps_run_in_order_and_outputs_merge_into_context(runtime: Any) -> None:
    log: list[str] = []
    rt = await runtime(recording_saga(log=log)).open()
    result = await rt.run("s", {"input": 1}, saga_id="a")
    assert result.status == sk.SagaStatus.COMPLETED
    assert result.context == {"input": 1, "s0": 1, "s1": 1, "s2": 1}
    assert log == ["do s0 #1", "do s1 #1", "do s2 #1"]
    stored = await rt.get("a")
    assert stored.context == result.context and stored.completed_at is not None
    types = [e.type for e in await rt.history("a")]
    assert types == ["saga_started", *["step_completed"] * 3, "saga_completed"]


async def test_context_carries_ids_and_is_read_only(runtime: Any) -> None:
    seen: dict[str, Any] = {}
    saga = sk.Saga("ctx")

    @saga.step
    async def look(ctx: sk.StepContext) -> None:
        seen.update(
            saga_id=ctx.saga_id, step=ctx.step, attempt=ctx.attempt, key=ctx.idempotency_key
        )
        with pytest.raises(TypeError):
            ctx["x"] = 1  # type: ignore[index]

    rt = await runtime(saga).open()
    await rt.run("ctx", {}, saga_id="order-1")
    assert seen == {"saga_id": "order-1", "step": "look", "attempt": 1, "key": "order-1:look"}


async def test_failing_step_is_retried_then_succeeds(runtime: Any) -> None:
    log: list[str] = []
    saga = recording_saga(log=log, fail=lambda step, attempt: step == "s1" and attempt < 3)
    rt = await runtime(saga).open()
    result = await rt.run("s", {})
    assert result.status == sk.SagaStatus.COMPLETED
    assert log == ["do s0 #1", "do s1 #1", "do s1 #2", "do s1 #3", "do s2 #1"]
    failed = [e for e in await rt.history(result.id) if e.type == "step_failed"]
    assert [(e.step, e.attempt) for e in failed] == [("s1", 1), ("s1", 2)]
    assert failed[0].error == {"type": "builtins.RuntimeError", "message": "s1 broke"}


async def test_step_failing_past_retries_compensates_completed_steps_in_reverse(
    runtime: Any,
) -> None:
    log: list[str] = []
    saga = recording_saga(steps=4, log=log, fail=lambda step, attempt: step == "s2")
    rt = await runtime(saga).open()
    result = await rt.run("s", {})
    assert (result.status, result.reason) == (sk.SagaStatus.COMPENSATED, sk.Reason.ERROR)
    assert result.error_message == "s2 broke"
    assert log == [
        "do s0 #1", "do s1 #1", "do s2 #1", "do s2 #2", "do s2 #3", "undo s1 #1", "undo s0 #1",
    ]  # fmt: skip
    types = [e.type for e in await rt.history(result.id)]
    assert types[-4:] == [
        "compensation_started", "compensation_completed", "compensation_completed",
        "saga_compensated",
    ]  # fmt: skip


async def test_non_retryable_error_fails_the_step_at_once(runtime: Any) -> None:
    calls: list[int] = []
    saga = sk.Saga("nr")

    @saga.step(retry=sk.Retry(max_attempts=5, non_retryable=(PermissionError,)))
    async def guarded(ctx: sk.StepContext) -> None:
        calls.append(ctx.attempt)
        raise PermissionError("no")

    rt = await runtime(saga).open()
    result = await rt.run("nr", {})
    assert result.status == sk.SagaStatus.COMPENSATED
    assert calls == [1]


async def test_compensation_failing_past_retries_leaves_saga_failed(runtime: Any) -> None:
    log: list[str] = []
    saga = recording_saga(
        log=log,
        fail=lambda step, attempt: step == "s2",
        fail_compensation=lambda step, attempt: step == "s1",
    )
    rt = await runtime(saga).open()
    result = await rt.run("s", {})
    assert result.status == sk.SagaStatus.FAILED
    assert result.error_message == "undo s1 broke"
    assert result.error_stack and "RuntimeError" in result.error_stack
    assert log[-3:] == ["undo s1 #1", "undo s1 #2", "undo s1 #3"]
    assert "undo s0 #1" not in log  # rollback stops where a person must look
    assert [e.type for e in await rt.history(result.id)][-1] == "saga_failed"


async def test_compensation_retries_then_succeeds(runtime: Any) -> None:
    log: list[str] = []
    saga = recording_saga(
        log=log,
        fail=lambda step, attempt: step == "s2",
        fail_compensation=lambda step, attempt: step == "s0" and attempt == 1,
    )
    rt = await runtime(saga).open()
    result = await rt.run("s", {})
    assert result.status == sk.SagaStatus.COMPENSATED
    assert log[-3:] == ["undo s1 #1", "undo s0 #1", "undo s0 #2"]


async def test_step_timeout_is_a_failure_of_that_attempt(runtime: Any) -> None:
    saga = sk.Saga("slow", retry=sk.Retry(max_attempts=2, initial=0.001))
    attempts: list[int] = []

    @saga.step(timeout=0.05)
    async def slow(ctx: sk.StepContext) -> None:
        attempts.append(ctx.attempt)
        await asyncio.sleep(10)

    rt = await runtime(saga).open()
    result = await rt.run("slow", {})
    assert result.status == sk.SagaStatus.COMPENSATED
    assert attempts == [1, 2]
    assert "ran past its timeout of 0.05s" in (result.error_message or "")


async def test_saga_timeout_compensates_with_reason_timeout(runtime: Any) -> None:
    log: list[str] = []
    saga = sk.Saga("deadline", timeout=0.2)

    @saga.step
    async def quick(ctx: sk.StepContext) -> None:
        log.append("quick")

    @quick.compensation
    async def undo_quick(ctx: sk.StepContext) -> None:
        log.append("undo quick")

    @saga.step
    async def stuck(ctx: sk.StepContext) -> None:
        await asyncio.sleep(30)

    rt = await runtime(saga).open()
    result = await rt.run("deadline", {})
    assert (result.status, result.reason) == (sk.SagaStatus.COMPENSATED, sk.Reason.TIMEOUT)
    assert log == ["quick", "undo quick"]
    assert "saga_timed_out" in [e.type for e in await rt.history(result.id)]


async def test_sync_steps_run_in_a_worker_thread(runtime: Any) -> None:
    threads: list[str] = []
    saga = sk.Saga("sync")

    @saga.step
    def blocking(ctx: sk.StepContext) -> dict[str, int]:
        threads.append(threading.current_thread().name)
        return {"n": 1}

    rt = await runtime(saga).open()
    result = await rt.run("sync", {})
    assert result.status == sk.SagaStatus.COMPLETED and result.context == {"n": 1}
    assert threads and threads[0] != threading.main_thread().name


async def test_unserialisable_result_fails_the_step_naming_key_and_type(runtime: Any) -> None:
    saga = sk.Saga("bad")
    calls: list[int] = []

    @saga.step
    async def fine(ctx: sk.StepContext) -> dict[str, int]:
        return {"ok": 1}

    @saga.step
    async def returns_datetime(ctx: sk.StepContext) -> dict[str, Any]:
        calls.append(ctx.attempt)
        return {"when": datetime(2026, 1, 1)}

    rt = await runtime(saga).open()
    result = await rt.run("bad", {}, saga_id="b1")
    # the step fails (no retry: it would fail the same way), the saga is rolled back
    assert result.status == sk.SagaStatus.COMPENSATED
    assert calls == [1]
    assert result.error_type == "sagakit.errors.NotSerializable"
    assert "'when' is a datetime" in (result.error_message or "")
    stored = await rt.get("b1")
    assert "when" not in stored.context  # nothing half-written


async def test_non_dict_result_fails_with_a_clear_error(runtime: Any) -> None:
    saga = sk.Saga("nd", retry=sk.Retry(max_attempts=1))

    @saga.step
    async def returns_int(ctx: sk.StepContext) -> int:
        return 3

    rt = await runtime(saga).open()
    result = await rt.run("nd", {})
    assert "returned an int; return a dict" in (result.error_message or "")


async def test_unserialisable_context_is_refused_before_anything_is_stored(
    runtime: Any,
) -> None:
    rt = await runtime(recording_saga(log=[])).open()
    with pytest.raises(sk.NotSerializable, match="'conn' is a object"):
        await rt.run("s", {"conn": object()}, saga_id="x")
    with pytest.raises(sk.SagaNotFound):
        await rt.get("x")


async def test_run_with_an_existing_id_never_runs_twice(runtime: Any) -> None:
    log: list[str] = []
    rt = await runtime(recording_saga(log=log)).open()
    first = await rt.run("s", {"v": 1}, saga_id="once")
    second = await rt.run("s", {"v": 2}, saga_id="once")
    assert log == ["do s0 #1", "do s1 #1", "do s2 #1"]
    assert second.context == first.context and second.context["v"] == 1
    started = [e for e in await rt.history("once") if e.type == "saga_started"]
    assert len(started) == 1


async def test_concurrent_runs_of_one_id_run_it_once(runtime: Any) -> None:
    log: list[str] = []
    rt = await runtime(recording_saga(log=log)).open()
    results = await asyncio.gather(*(rt.run("s", {}, saga_id="same") for _ in range(5)))
    assert all(r.status == sk.SagaStatus.COMPLETED for r in results)
    assert log == ["do s0 #1", "do s1 #1", "do s2 #1"]


async def test_outbox_messages_commit_with_their_step(runtime: Any) -> None:
    saga = sk.Saga("pub", retry=sk.Retry(max_attempts=2, initial=0.001))

    @saga.step
    async def announce(ctx: sk.StepContext) -> None:
        ctx.publish("orders.created", {"attempt": ctx.attempt})
        if ctx.attempt == 1:
            raise RuntimeError("publish then fail")

    rt = await runtime(saga).open()
    await rt.run("pub", {}, saga_id="p")
    messages = await rt.store.list_outbox(OutboxQuery(state=OutboxState.PENDING))
    # the failed attempt's message was dropped with it
    assert [(m.topic, m.payload) for m in messages] == [("orders.created", {"attempt": 2})]


async def test_unknown_saga_type_names_the_registered_ones(runtime: Any) -> None:
    rt = await runtime(recording_saga(log=[])).open()
    with pytest.raises(sk.UnknownSagaType, match=r"'nope'.*registered: s"):
        await rt.run("nope", {})


async def test_list_filters_by_status(runtime: Any) -> None:
    saga = recording_saga(log=[], fail=lambda step, attempt: step == "s0")
    rt = await runtime(saga).open()
    await rt.run("s", {"fail": True}, saga_id="f")
    ok = recording_saga("t", log=[])
    rt.register(ok)
    await rt.run("t", {}, saga_id="c")
    assert [r.id for r in await rt.list(status="compensated")] == ["f"]
    assert [r.id for r in await rt.list(saga_type="t")] == ["c"]
    assert {r.id for r in await rt.list()} == {"f", "c"}
    with pytest.raises(sk.ConfigurationError, match="status 'bogus' is unknown"):
        await rt.list(status="bogus")


async def test_using_a_runtime_before_opening_it_says_how(store_url: str) -> None:
    rt = sk.Runtime(store_url, sagas=[recording_saga(log=[])])
    with pytest.raises(sk.ConfigurationError, match="async with Runtime"):
        await rt.run("s", {})


async def test_unserialisable_publish_fails_only_its_own_step(runtime: Any) -> None:
    saga = sk.Saga("pubbad", retry=sk.Retry(max_attempts=1))

    @saga.step
    async def announce(ctx: sk.StepContext) -> None:
        if ctx["bad"]:
            ctx.publish("t", {"when": datetime(2026, 1, 1)})
        else:
            ctx.publish("t", {"ok": True})

    rt = await runtime(saga).open()
    results = await asyncio.gather(
        *(rt.run("pubbad", {"bad": i == 3}, saga_id=f"p{i}") for i in range(8))
    )
    statuses = {r.id: r.status for r in results}
    assert statuses.pop("p3") == sk.SagaStatus.COMPENSATED
    assert set(statuses.values()) == {sk.SagaStatus.COMPLETED}
    failed = await rt.get("p3")
    assert "publish('t') payload: value of 'when' is a datetime" in (failed.error_message or "")
    assert len(await rt.store.list_outbox(OutboxQuery(state=OutboxState.PENDING))) == 7


async def test_a_broken_hook_never_breaks_a_saga(runtime: Any) -> None:
    class Broken(sk.SagaHooks):
        def step_completed(self, saga: sk.SagaRecord, step: str, seconds: float) -> None:
            raise RuntimeError("metrics backend down")

    rt = await runtime(recording_saga(log=[]), hooks=[Broken()]).open()
    result = await rt.run("s", {})
    assert result.status == sk.SagaStatus.COMPLETED


@pytest.mark.parametrize(
    ("context", "path"),
    [
        ({"note": "a\x00b"}, "'note' contains a NUL"),
        ({"items": [{"name": "\ud800"}]}, "'items[0].name' is not valid UTF-8"),
        ({"ratio": float("nan")}, "'ratio' is nan"),
        ({"big": 10**30}, "'big' is an integer beyond"),
    ],
)
async def test_what_no_store_can_hold_is_refused_alike_on_every_store(
    runtime: Any, context: dict[str, Any], path: str
) -> None:
    rt = await runtime(recording_saga(log=[])).open()
    with pytest.raises(sk.NotSerializable, match=path.replace("[", r"\[").replace("]", r"\]")):
        await rt.start("s", context, saga_id="hostile")
    with pytest.raises(sk.ConfigurationError, match="saga_id 'a\\\\x00b' contains a NUL"):
        await rt.start("s", {}, saga_id="a\x00b")
    assert await rt.list() == []
