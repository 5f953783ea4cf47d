"""Broker messages as state machine events: published by a saga, routed into ``rt.send``.

On the in-process broker, on a real RabbitMQ and on a real NATS JetStream: every message
applied once to its instance, the inbox mark written in the instance's own transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

import sagakit as sk
from sagakit.history import EventType
from sagakit.messaging.brokers.rabbitmq import RabbitMQ
from sagakit.store.records import SagaQuery

from ..machines.test_state_machines import eventually, order_machine, shipping_saga
from ..servers import drop_nats_streams, nats_url, rabbitmq_url


def checkout_saga() -> sk.Saga:
    """What another team's service does: its saga announces orders on the bus."""
    saga = sk.Saga("checkout")

    @saga.step
    def announce(ctx: sk.StepContext) -> None:
        ctx.publish("shop.order_submitted", {"order_id": ctx["order_id"], "total": ctx["total"]})

    return saga


@pytest.fixture(params=["memory", "rabbitmq", "nats"])
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Any, str]]:
    """A broker, and a queue name of this test's own."""
    exchange = f"t_{uuid.uuid4().hex[:10]}"
    if request.param == "memory":
        yield sk.MemoryBroker(), f"{exchange}.orders"
        return
    if request.param == "nats":
        url = nats_url()
        yield sk.NatsJetStream(url, stream=exchange), f"{exchange}.orders"
        await drop_nats_streams(url, exchange)
        return
    import aio_pika

    url = rabbitmq_url()
    yield RabbitMQ(url, exchange=exchange), f"{exchange}.orders"
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for queue in (f"{exchange}.orders", f"{exchange}.orders.dead"):
            await channel.queue_delete(queue)
        for name in (exchange, f"{exchange}.dead"):
            await channel.exchange_delete(name)


async def test_published_messages_drive_a_state_machine_once_each(
    broker: tuple[Any, str], tmp_path: Any
) -> None:
    bus, queue = broker
    definitions = [checkout_saga(), order_machine(), shipping_saga([])]
    async with sk.Runtime(
        f"sqlite:///{tmp_path}/bus.db", sagas=definitions, broker=bus, poll_interval=0.05
    ) as rt:
        await rt.route_events(
            "shop.order_submitted", queue=queue, event=lambda envelope: "OrderSubmitted"
        )
        for n in range(5):
            await rt.run("checkout", {"order_id": f"b-{n}", "total": n})

        async def all_submitted() -> bool:
            found = await rt.store.list(SagaQuery(kind="state_machine"))
            return len(found) == 5 and all(r.current_step == "Submitted" for r in found)

        await eventually(all_submitted)
        for n in range(5):
            instance = await rt.get(f"order:b-{n}")
            assert instance.data["total"] == n
            applied = [
                e for e in await rt.history(instance.id) if e.type == EventType.EVENT_APPLIED
            ]
            assert len(applied) == 1


async def test_a_queue_bound_from_the_definitions_takes_every_event_they_handle(
    broker: tuple[Any, str], tmp_path: Any
) -> None:
    bus, queue = broker

    emitter = sk.Saga("emitter")

    @emitter.step
    def emit(ctx: sk.StepContext) -> None:
        ctx.publish("OrderSubmitted", {"order_id": "d-1", "total": 4})
        ctx.publish("PaymentCaptured", {"order_id": "d-1"})

    definitions = [emitter, order_machine(), shipping_saga([])]
    async with sk.Runtime(
        f"sqlite:///{tmp_path}/d.db", sagas=definitions, broker=bus, poll_interval=0.05
    ) as rt:
        await rt.route_events(queue=queue)  # topics: the events the order takes
        await rt.run("emitter", {})

        async def paid() -> bool:
            record = await rt.store.get("order:d-1")
            return record is not None and record.current_step == "Paid"

        await eventually(paid)
