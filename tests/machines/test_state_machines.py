"""Persistent state machines on every store: transitions, idempotence, races, policies."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import sagakit as sk
from sagakit.history import EventType
from sagakit.machines.instance import FAULTED
from sagakit.store.records import OutboxQuery

Out = sk.Outcome
S = sk.SagaStatus


def order_machine(name: str = "order", **options: Any) -> sk.StateMachine:
    """Seed 000's order flow: submitted -> paid -> shipped, with a payment timeout."""
    order = sk.StateMachine(name, correlate_by="order_id", **options)
    submitted, paid, shipped = order.states("Submitted", "Paid", "Shipped")

    @order.initially("OrderSubmitted")
    def on_submitted(instance: sk.Instance, event: dict[str, Any]) -> sk.State:
        instance.data["total"] = event["total"]
        instance.publish("payments.requested", {"order_id": event["order_id"]})
        instance.schedule("PaymentTimeout", after=event.get("timeout", 3600))
        return submitted

    @order.during(submitted, "PaymentCaptured")
    def on_paid(instance: sk.Instance, event: dict[str, Any]) -> sk.State:
        instance.unschedule("PaymentTimeout")
        instance.start("shipping", {"order_id": event["order_id"]})
        return paid

    @order.during(submitted, "PaymentTimeout")
    def on_timeout(instance: sk.Instance, event: dict[str, Any]) -> None:
        instance.data["timed_out"] = True
        instance.finalize()

    @order.during(paid, "OrderShipped")
    async def on_shipped(instance: sk.Instance, event: dict[str, Any]) -> sk.State:
        instance.finalize()
        return shipped

    order.event("PaymentCaptured", missing="hold")
    return order


def shipping_saga(log: list[str]) -> sk.Saga:
    saga = sk.Saga("shipping")

    @saga.step
    def pack(ctx: sk.StepContext) -> dict[str, Any]:
        log.append(ctx["order_id"])
        return {"packed": True}

    return saga


def counter_machine(name: str = "counter") -> sk.StateMachine:
    counter = sk.StateMachine(name, correlate_by="key")
    (counting,) = counter.states("Counting")

    @counter.initially("Add")
    def first(instance: sk.Instance, event: dict[str, Any]) -> sk.State:
        instance.data["n"] = event.get("by", 1)
        return counting

    @counter.during(counting, "Add")
    def add(instance: sk.Instance, event: dict[str, Any]) -> None:
        instance.data["n"] += event.get("by", 1)

    return counter


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    """Wait until ``check()`` holds (a worker acts on its own time), or fail."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.05)


async def test_events_move_an_instance_and_write_with_its_transition(store_url: str) -> None:
    # Given the order machine and the orchestrated shipping saga in one Runtime
    log: list[str] = []
    async with sk.Runtime(
        store_url, sagas=[order_machine(), shipping_saga(log)], poll_interval=0.05
    ) as rt:
        # When an order is submitted and paid
        first = await rt.send("OrderSubmitted", {"order_id": "o-1", "total": 10}, message_id="m-1")
        paid = await rt.send("PaymentCaptured", {"order_id": "o-1"})
        # I expect each event applied, in one instance keyed by order id
        assert (first.outcome, first.deliveries[0].state) == (Out.APPLIED, "Submitted")
        assert (paid.outcome, paid.deliveries[0].state) == (Out.APPLIED, "Paid")
        instance = await rt.get("order:o-1")
        assert (instance.status, instance.current_step) == (S.ACTIVE, "Paid")
        assert instance.data == {"total": 10}
        assert instance.kind == "state_machine"
        # the schedule was cancelled with the payment
        assert instance.next_attempt_at is None
        # the message went to the outbox with the first transition
        messages = await rt.store.list_outbox(OutboxQuery(saga_id="order:o-1"))
        assert [m.topic for m in messages] == ["payments.requested"]
        # the shipping saga started with the payment, and a worker ran it
        await eventually(lambda: _has(log, "o-1"))
        history = [(e.type, e.step) for e in await rt.history("order:o-1")]
        assert history == [
            (EventType.EVENT_APPLIED, "OrderSubmitted"),
            (EventType.EVENT_APPLIED, "PaymentCaptured"),
        ]


async def _has(log: list[str], item: str) -> bool:
    return item in log


async def test_a_message_id_applied_once_is_acknowledged_and_not_applied_again(
    store_url: str,
) -> None:
    async with sk.Runtime(store_url, sagas=[counter_machine()], workers=0) as rt:
        for _ in range(3):
            await rt.send("Add", {"key": "k", "by": 5}, message_id="same")
        again = await rt.send("Add", {"key": "k", "by": 5}, message_id="same")
        assert again.outcome is Out.DUPLICATE
        assert (await rt.get("counter:k")).data["n"] == 5


async def test_concurrent_events_to_one_instance_are_each_applied_once(store_url: str) -> None:
    # Given 100 events for one new key at once, the first of them creating the instance
    async with sk.Runtime(store_url, sagas=[counter_machine()], workers=0) as rt:
        results = await asyncio.gather(
            *(rt.send("Add", {"key": "hot"}, message_id=f"m{i}") for i in range(100))
        )
        # I expect one instance and every event applied exactly once
        assert {r.outcome for r in results} == {Out.APPLIED}
        assert (await rt.get("counter:hot")).data["n"] == 100
        counted = [e for e in await rt.history("counter:hot") if e.type == EventType.EVENT_APPLIED]
        assert len(counted) == 100


async def test_an_event_with_no_handler_in_the_state_is_never_silent(store_url: str) -> None:
    order = order_machine()
    ignoring = order_machine("order_quiet", on_unhandled="ignore")
    seen: list[str] = []
    custom = counter_machine("custom")
    custom.unhandled = lambda instance, event: seen.append(instance.event)  # type: ignore[assignment,return-value]
    async with sk.Runtime(store_url, sagas=[order, ignoring, custom], workers=0) as rt:
        await rt.send("OrderSubmitted", {"order_id": "o", "total": 1})
        # the shipped event is not handled while Submitted: recorded, reported, unchanged
        result = await rt.send("OrderShipped", {"order_id": "o"})
        faulted, quiet = sorted(result.deliveries, key=lambda d: d.instance_id)
        assert faulted.outcome is Out.UNHANDLED and "no handler" in (faulted.error or "")
        assert quiet.outcome is Out.IGNORED
        assert (await rt.get("order:o")).current_step == "Submitted"
        types = [e.type for e in await rt.history("order:o")]
        assert types[-1] == EventType.EVENT_UNHANDLED
        assert [e.type for e in await rt.history("order_quiet:o")][-1] == EventType.EVENT_IGNORED
        # a machine may give its own handler for what its states do not take
        await rt.send("Add", {"key": "c"})
        custom.event("Other", missing="ignore")
        other = await rt.send("Other", {"key": "c"})
        assert other.outcome is Out.APPLIED and seen == ["Other"]


async def test_events_for_no_instance_fault_or_are_held_until_it_exists(store_url: str) -> None:
    log: list[str] = []
    counter = counter_machine()
    async with sk.Runtime(
        store_url, sagas=[order_machine(), shipping_saga(log), counter], workers=0
    ) as rt:
        # a counter event with no instance creates it; an unknown machine's event is refused
        with pytest.raises(sk.ConfigurationError, match="no registered state machine"):
            await rt.send("Nope", {"order_id": "x"})
        # the payment for an order not yet submitted is held (the out-of-order arrival)
        early = await rt.send("PaymentCaptured", {"order_id": "late"}, message_id="pay-1")
        assert early.outcome is Out.HELD
        assert (
            await rt.send("PaymentCaptured", {"order_id": "late"}, message_id="pay-1")
        ).outcome is Out.DUPLICATE
        # when the order arrives, the held payment is applied right after it
        await rt.send("OrderSubmitted", {"order_id": "late", "total": 3})
        instance = await rt.get("order:late")
        assert instance.current_step == "Paid"
        assert (instance.deferred or {}).get("held") == []


async def test_an_event_for_no_instance_that_is_not_held_is_reported(store_url: str) -> None:
    async with sk.Runtime(store_url, sagas=[order_machine()], workers=0) as rt:
        result = await rt.send("OrderShipped", {"order_id": "ghost"})
        assert result.outcome is Out.NO_INSTANCE
        assert "does not create one" in (result.deliveries[0].error or "")
        assert await rt.store.get("order:ghost") is None
        with pytest.raises(sk.ConfigurationError, match="'order_id'"):
            await rt.send("OrderSubmitted", {"total": 1})


async def test_a_schedule_fires_through_a_worker_and_unschedule_cancels_it(
    store_url: str,
) -> None:
    log: list[str] = []
    async with sk.Runtime(
        store_url, sagas=[order_machine(), shipping_saga(log)], poll_interval=0.05
    ) as rt:
        await rt.send("OrderSubmitted", {"order_id": "slow", "total": 1, "timeout": 0.2})
        await rt.send("OrderSubmitted", {"order_id": "fast", "total": 1, "timeout": 0.2})
        await rt.send("PaymentCaptured", {"order_id": "fast"})
        # the unpaid order times out and is finalized by a worker
        await eventually(lambda: _status(rt, "order:slow", S.COMPLETED))
        slow = await rt.get("order:slow")
        assert slow.data["timed_out"] is True and slow.next_attempt_at is None
        # the paid one never sees its cancelled timeout
        await eventually(lambda: _has(log, "fast"))
        fast = await rt.get("order:fast")
        assert (fast.status, fast.current_step) == (S.ACTIVE, "Paid")
        assert "timed_out" not in fast.data


async def _status(rt: sk.Runtime, saga_id: str, status: sk.SagaStatus) -> bool:
    return (await rt.get(saga_id)).status == status


async def test_a_failing_handler_is_retried_then_faulted_and_can_be_redelivered(
    store_url: str,
) -> None:
    broken = {"on": True}
    machine = sk.StateMachine(
        "flaky", correlate_by="key", retry=sk.Retry(max_attempts=3, initial=0.001)
    )
    (ready,) = machine.states("Ready")
    calls: list[int] = []

    @machine.initially("Go")
    def go(instance: sk.Instance, event: dict[str, Any]) -> sk.State:
        calls.append(1)
        instance.data["went"] = True
        if broken["on"]:
            raise RuntimeError("downstream said no")
        return ready

    async with sk.Runtime(store_url, sagas=[machine], workers=0) as rt:
        result = await rt.send("Go", {"key": "a"}, message_id="go-1")
        assert result.outcome is Out.FAULTED and "downstream said no" in (
            result.deliveries[0].error or ""
        )
        assert len(calls) == 3
        instance = await rt.get("flaky:a")
        assert instance.current_step is None and instance.data == {}
        assert [e.type for e in await rt.history("flaky:a")] == [EventType.EVENT_FAULTED]
        assert len((instance.deferred or {})[FAULTED]) == 1
        # once fixed, an operator redelivers it
        broken["on"] = False
        [again] = await rt.redeliver("flaky:a")
        assert again.outcome is Out.APPLIED
        instance = await rt.get("flaky:a")
        assert instance.current_step == "Ready" and instance.deferred.get(FAULTED) == []


async def test_finalized_instances_take_no_more_events_and_machines_keep_apart(
    store_url: str,
) -> None:
    log: list[str] = []
    async with sk.Runtime(
        store_url,
        sagas=[order_machine(), counter_machine("order_lines"), shipping_saga(log)],
        workers=0,
    ) as rt:
        await rt.send("OrderSubmitted", {"order_id": "f", "total": 1})
        await rt.send("PaymentCaptured", {"order_id": "f"})
        await rt.send("OrderShipped", {"order_id": "f"})
        done = await rt.get("order:f")
        assert (done.status, done.current_step) == (S.COMPLETED, "Shipped")
        assert done.completed_at is not None
        late = await rt.send("PaymentCaptured", {"order_id": "f"})
        assert late.outcome is Out.FINALIZED
        await rt.send("Add", {"key": "f"})
        assert (await rt.get("order_lines:f")).data == {"n": 1}


async def test_a_state_the_definition_lost_pauses_the_instance(store_url: str) -> None:
    # the same store before and after the deploy (memory:// would be a new one each time)
    where: dict[str, Any] = (
        {"store": sk.MemoryStore()} if store_url == "memory://" else {"url": store_url}
    )
    async with sk.Runtime(**where, sagas=[counter_machine()], workers=0) as rt:
        await rt.send("Add", {"key": "old"})
    renamed = sk.StateMachine("counter", correlate_by="key")
    (tallying,) = renamed.states("Tallying")

    @renamed.initially("Add")
    def add(instance: sk.Instance, event: dict[str, Any]) -> sk.State:
        return tallying

    async with sk.Runtime(**where, sagas=[renamed], workers=0) as rt:
        result = await rt.send("Add", {"key": "old"}, message_id="after-deploy")
        assert result.outcome is Out.PAUSED
        paused = await rt.get("counter:old")
        assert (paused.status, paused.reason) == (S.PAUSED, sk.Reason.DEFINITION_CHANGED)
        assert paused.data == {"n": 1}


def test_definitions_are_checked_with_clear_errors() -> None:
    machine = sk.StateMachine("m", correlate_by="id")
    (a,) = machine.states("A")
    with pytest.raises(sk.DefinitionError, match="state 'A' twice"):
        machine.states("A")
    with pytest.raises(sk.DefinitionError, match="on_unhandled"):
        sk.StateMachine("x", correlate_by="id", on_unhandled="explode")
    with pytest.raises(sk.DefinitionError, match="missing must be"):
        machine.event("E", missing="later")
    other = sk.StateMachine("other", correlate_by="id")
    (b,) = other.states("B")
    with pytest.raises(sk.DefinitionError, match="during"):
        machine.during(b, "E")
    with pytest.raises(sk.DefinitionError, match="no initially"):
        sk.Runtime("memory://", sagas=[machine])


async def test_metrics_count_events_by_machine_event_state_and_outcome(tmp_path: Any) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from sagakit.observability.metrics import SagaMetrics

    metrics = SagaMetrics()
    async with sk.Runtime(
        f"sqlite:///{tmp_path}/m.db", sagas=[order_machine(), shipping_saga([])], hooks=[metrics]
    ) as rt:
        await rt.send("OrderSubmitted", {"order_id": "m", "total": 1}, message_id="x")
        await rt.send("OrderSubmitted", {"order_id": "m", "total": 1}, message_id="x")
        await rt.send("OrderShipped", {"order_id": "m"})
        await rt.send("OrderShipped", {"order_id": "nobody"})
        await metrics.refresh(rt.store, ["order"])
    labels = ("machine", "event", "state", "outcome")
    counted = {
        tuple(s.labels[k] for k in labels): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
        if s.name == "saga_machine_events_total"
    }
    assert counted == {
        ("order", "OrderSubmitted", "Submitted", "applied"): 1,
        ("order", "OrderSubmitted", "Submitted", "duplicate"): 1,
        ("order", "OrderShipped", "Submitted", "unhandled"): 1,
        ("order", "OrderShipped", "", "no_instance"): 1,
    }
    gauges = {
        tuple(s.labels[k] for k in ("machine", "state")): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
        if s.name == "saga_machine_instances"
    }
    assert gauges == {("order", "Submitted"): 1}


async def test_finalized_instances_are_archived_after_the_machines_own_time(
    store_url: str,
) -> None:
    from datetime import timedelta

    quick = order_machine(archive_after=timedelta(0))
    where: dict[str, Any] = (
        {"store": sk.MemoryStore()} if store_url == "memory://" else {"url": store_url}
    )
    async with sk.Runtime(**where, sagas=[quick, shipping_saga([])], workers=0) as rt:
        await rt.send("OrderSubmitted", {"order_id": "a", "total": 1, "timeout": 3600})
        await rt.send("OrderSubmitted", {"order_id": "b", "total": 1, "timeout": 3600})
        await rt.send("PaymentCaptured", {"order_id": "a"})
        await rt.send("OrderShipped", {"order_id": "a"})
    # a worker's retention pass archives the finalized one, not the active one
    async with sk.Runtime(**where, sagas=[quick, shipping_saga([])], poll_interval=0.05) as rt:
        await eventually(lambda: _archived(rt, "order:a"))
        assert (await rt.get("order:b")).archived_at is None


async def _archived(rt: sk.Runtime, saga_id: str) -> bool:
    return (await rt.get(saga_id)).archived_at is not None
