"""The relay on every store with the in-process broker: order, identity, retries, outages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

import sagakit as sk
from sagakit.messaging import BrokerUnavailable, Envelope, MemoryBroker, PublishRefused, Relay
from sagakit.store.records import OutboxQuery, OutboxState, utcnow

SAGAS = 12


def publishing_saga() -> sk.Saga:
    saga = sk.Saga("pub")

    @saga.step
    async def first(ctx: sk.StepContext) -> None:
        ctx.publish(f"orders.{ctx['topic']}", {"n": 0, "saga": ctx.saga_id}, {"h": 1})
        ctx.publish(f"orders.{ctx['topic']}", {"n": 1, "saga": ctx.saga_id})

    @saga.step
    async def second(ctx: sk.StepContext) -> None:
        ctx.publish("orders.done", {"n": 2, "saga": ctx.saga_id})

    return saga


async def until(check: Callable[[], Any], what: str, timeout: float = 30) -> None:
    """Wait until the counter ``check()`` looks at says so, looking again every 10 ms."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


class FlakyBroker(MemoryBroker):
    """Refuses topics in ``refuse``; is unreachable while ``down``."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse: set[str] = set()
        self.down = False
        self.attempts = 0

    async def publish(self, envelope: Envelope) -> None:
        self.attempts += 1
        if self.down:
            raise BrokerUnavailable("memory broker switched off")
        if envelope.topic in self.refuse:
            raise PublishRefused(f"no queue is bound to topic {envelope.topic!r}")
        await super().publish(envelope)


async def test_every_message_is_published_once_in_saga_order_with_its_identity(
    store_url: str,
) -> None:
    broker = MemoryBroker()
    async with sk.Runtime(store_url, sagas=[publishing_saga()], broker=broker) as rt:
        # When sagas publish from their steps
        for i in range(SAGAS):
            await rt.start("pub", {"topic": "created"}, saga_id=f"s{i}")
        await until(lambda: len(broker.published) == 3 * SAGAS, "every message published")
        # the relay marks a batch published once the broker confirmed all of it
        while True:
            rows = await rt.store.list_outbox(OutboxQuery(limit=1000))
            if all(m.state is OutboxState.PUBLISHED for m in rows):
                break
            await asyncio.sleep(0.01)
    # I expect each confirmed once, each saga's in the order written, ids from the outbox
    by_saga: dict[str, list[int]] = {}
    for envelope in broker.published:
        by_saga.setdefault(envelope.correlation_id or "", []).append(envelope.payload["n"])
    assert by_saga == {f"s{i}": [0, 1, 2] for i in range(SAGAS)}
    assert {m.message_id for m in rows} == {e.message_id for e in broker.published}
    assert all(m.state is OutboxState.PUBLISHED for m in rows)
    first = next(e for e in broker.published if e.payload == {"n": 0, "saga": "s0"})
    assert first.headers == {
        "h": 1,
        "sagakit-saga-id": "s0",
        "sagakit-saga-type": "pub",
        "sagakit-step": "first",
    }
    assert first.topic == "orders.created"


async def test_a_refused_message_is_retried_then_dead_and_holds_back_only_its_saga(
    store_url: str,
) -> None:
    broker = FlakyBroker()
    broker.refuse = {"orders.bad"}
    async with sk.Runtime(store_url, sagas=[publishing_saga()], workers=2) as rt:
        await rt.run("pub", {"topic": "bad"}, saga_id="bad")
        await rt.run("pub", {"topic": "good"}, saga_id="good")
        relay = Relay(rt.store, broker, owner="relay-1", max_attempts=2, poll_interval=0.05)
        task = asyncio.create_task(relay.run())
        try:
            # When the broker keeps refusing one saga's first message
            await until(lambda: relay.counters.dead == 1, "the refused message dead")
            await until(lambda: len(broker.published) == 3, "the other saga's messages")
            dead = await rt.store.list_outbox(OutboxQuery(state=OutboxState.DEAD))
            # I expect it dead after its attempts, with why, and its saga's later ones held
            assert [(m.saga_id, m.payload["n"], m.attempts) for m in dead] == [("bad", 0, 2)]
            assert "no queue is bound" in (dead[0].last_error or "")
            assert [e.correlation_id for e in broker.published] == ["good"] * 3
            # and once a queue exists and an operator retries it, the saga's messages flow
            broker.refuse.clear()
            assert await rt.store.retry_outbox([dead[0].id or 0], now=utcnow()) == 1
            relay.wake()
            await until(lambda: len(broker.published) == 6, "the retried saga's messages")
            order = [e.payload["n"] for e in broker.published if e.correlation_id == "bad"]
            assert order == [0, 1, 2]
        finally:
            relay.stop()
            await task


async def test_a_broker_outage_loses_nothing_and_kills_nothing(store_url: str) -> None:
    broker = FlakyBroker()
    broker.down = True
    async with sk.Runtime(store_url, sagas=[publishing_saga()], workers=2) as rt:
        for i in range(4):
            await rt.run("pub", {"topic": "created"}, saga_id=f"o{i}")
        relay = Relay(rt.store, broker, owner="relay-1", max_attempts=1, poll_interval=0.05)
        task = asyncio.create_task(relay.run())
        try:
            # When the broker is unreachable for many more attempts than a message gets
            await until(lambda: relay.counters.outages >= 3, "several failed rounds")
            backlog = await rt.store.outbox_backlog()
            assert (backlog.pending, backlog.dead, broker.published) == (12, 0, [])
            # and comes back
            broker.down = False
            relay.wake()
            await until(lambda: len(broker.published) == 12, "the backlog drained")
        finally:
            relay.stop()
            await task
        # I expect every message published, none dead, none twice
        assert len({e.message_id for e in broker.published}) == 12
        assert (await rt.store.outbox_backlog()).dead == 0


def test_a_broker_setting_that_is_not_a_broker_is_refused() -> None:
    with pytest.raises(sk.ConfigurationError, match="broker must be a URL"):
        sk.Runtime("memory://", broker="localhost:5672")
    with pytest.raises(sk.ConfigurationError, match="scheme 'kafka' is not supported"):
        sk.Runtime("memory://", broker="kafka://localhost")


async def test_an_unexpected_store_error_does_not_stop_the_relay() -> None:
    class OnceBroken(sk.MemoryStore):
        broken = True

        async def claim_outbox(self, *args: Any, **kwargs: Any) -> Any:
            if self.broken:
                self.broken = False
                raise sk.StoreError("the claim query failed")
            return await super().claim_outbox(*args, **kwargs)

    broker = MemoryBroker()
    store = OnceBroken()
    async with sk.Runtime(store=store, sagas=[publishing_saga()], workers=1) as rt:
        await rt.run("pub", {"topic": "x"}, saga_id="u")
        relay = Relay(rt.store, broker, owner="relay-1", poll_interval=0.05)
        task = asyncio.create_task(relay.run())
        try:
            # I expect the relay to log the failure, wait, and go on publishing
            await until(lambda: len(broker.published) == 3, "the messages after the failure")
            assert not store.broken
        finally:
            relay.stop()
            await task
