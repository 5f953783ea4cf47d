"""The relay and consumers on a real RabbitMQ: properties, confirms, returns, dead letters."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

import sagakit as sk
from sagakit.messaging import Envelope, PublishRefused
from sagakit.messaging.brokers.rabbitmq import RabbitMQ
from sagakit.store.records import OutboxQuery, OutboxState

from ..servers import rabbitmq_url
from .test_relay import publishing_saga, until


@pytest.fixture
async def exchange() -> AsyncIterator[str]:
    """A fresh exchange name; the exchange and the test's queues are deleted afterwards."""
    import aio_pika

    url = rabbitmq_url()
    name = f"t_{uuid.uuid4().hex[:10]}"
    yield name
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for queue in (f"{name}.q", f"{name}.q.dead", f"{name}.raw"):
            await channel.queue_delete(queue)
        for ex in (name, f"{name}.dead"):
            await channel.exchange_delete(ex)


async def raw_queue(url: str, exchange: str, topic: str) -> tuple[Any, Any]:
    """A plain aio-pika queue bound to ``topic``, as another service would consume."""
    import aio_pika

    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(f"{exchange}.raw", durable=True)
    await queue.bind(ex, routing_key=topic)
    return connection, queue


async def test_published_messages_carry_what_a_consumer_relies_on(exchange: str) -> None:
    url = rabbitmq_url()
    connection, queue = await raw_queue(url, exchange, "orders.#")
    broker = RabbitMQ(url, exchange=exchange)
    try:
        async with sk.Runtime("memory://", sagas=[publishing_saga()], broker=broker) as rt:
            # When a saga publishes from its steps
            await rt.run("pub", {"topic": "created"}, saga_id="order-1")
            got = []
            async with queue.iterator() as messages:
                async for message in messages:
                    got.append(message)
                    await message.ack()
                    if len(got) == 3:
                        break
            rows = {m.message_id: m for m in await rt.store.list_outbox(OutboxQuery())}
    finally:
        await connection.close()
    # I expect AMQP properties from the outbox row, persistent JSON, in the saga's order
    import aio_pika

    first = got[0]
    assert [m.routing_key for m in got] == ["orders.created", "orders.created", "orders.done"]
    assert [Envelope.decode(m.body, "t")["n"] for m in got] == [0, 1, 2]
    assert first.message_id in rows and rows[first.message_id].state is OutboxState.PUBLISHED
    assert (first.correlation_id, first.type) == ("order-1", "orders.created")
    assert first.content_type == "application/json"
    assert first.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert first.timestamp is not None
    assert first.headers == {
        "h": 1,
        "sagakit-saga-id": "order-1",
        "sagakit-saga-type": "pub",
        "sagakit-step": "first",
    }


async def test_an_unroutable_message_is_returned_and_refused_not_dropped(exchange: str) -> None:
    broker = RabbitMQ(rabbitmq_url(), exchange=exchange)
    try:
        with pytest.raises(PublishRefused, match="returned"):
            await broker.publish(Envelope("nobody.listens", {"x": 1}))
    finally:
        await broker.close()


async def test_a_poison_message_is_dead_lettered_and_the_others_flow(exchange: str) -> None:
    url = rabbitmq_url()
    broker = RabbitMQ(url, exchange=exchange)
    applied: list[int] = []
    deliveries: dict[int, int] = {}

    async def handler(envelope: Envelope) -> None:
        n = envelope.payload["n"]
        deliveries[n] = envelope.deliveries
        if n == 3:
            raise RuntimeError("this one always fails")
        applied.append(n)

    try:
        stop = await broker.consume(f"{exchange}.q", ["work.*"], handler, max_deliveries=3)
        for n in range(6):
            await broker.publish(Envelope("work.item", {"n": n}))
        await until(lambda: sorted(applied) == [0, 1, 2, 4, 5], "the healthy messages")
        await until(lambda: deliveries.get(3) == 3, "three deliveries of the poison one")
        await stop()
        # I expect the poison message in the dead-letter queue, once
        import aio_pika

        connection = await aio_pika.connect(url)
        async with connection:
            channel = await connection.channel()
            dead = await channel.declare_queue(f"{exchange}.q.dead", passive=True)
            message = None
            for _ in range(100):
                message = await dead.get(fail=False)
                if message is not None:
                    break
                await asyncio.sleep(0.05)
            assert message is not None, "nothing in the dead-letter queue"
            assert Envelope.decode(message.body, "t") == {"n": 3}
            await message.ack()
    finally:
        await broker.close()
