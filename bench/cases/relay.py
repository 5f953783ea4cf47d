"""The relay: outbox messages per second to RabbitMQ with confirms, against raw aio-pika.

``relay.throughput`` alternates two blocks in each round: one relay draining
``messages`` outbox rows (written by sagas first, not timed), and aio-pika alone
publishing as many messages (confirms on, ``mandatory``, persistent, 100 awaited at
once: what the relay's batch does), each with the properties and headers the relay's
messages carry (correlation id, type, timestamp, the saga's id, type and step), so both
send the same frames. ``relay.floor_bare`` sends only a message id and the content
type, to show what those properties cost. ``relay.latency`` runs sagas one after another
with the relay running and reads, per message, commit to broker confirm
(``published_at`` minus the step's ``created_at``) from the outbox rows.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sagakit as sk
from bench.context import CaseContext
from sagakit.messaging import Relay
from sagakit.store.records import OutboxQuery

AMQP_URL = os.environ.get("SAGAKIT_BENCH_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
BATCH = 100


def _publishing_saga(per_saga: int) -> sk.Saga:
    saga = sk.Saga("bench_publish")

    @saga.step
    async def announce(ctx: sk.StepContext) -> None:
        for n in range(per_saga):
            ctx.publish("bench.event", {"saga": ctx.saga_id, "n": n, "pad": "x" * 200})

    return saga


async def _bound_exchange() -> tuple[Any, str]:
    """A fresh exchange with a queue bound to every topic (deleted at the end)."""
    import aio_pika

    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel()
    name = f"bench_{uuid.uuid4().hex[:8]}"
    exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
    await queue.bind(exchange, routing_key="#")
    return connection, name


async def _drop(connection: Any, name: str) -> None:
    channel = await connection.channel()
    await channel.queue_delete(name)
    await channel.exchange_delete(name)
    await connection.close()


def _full_message(body: bytes) -> Any:
    """A message with the properties and headers the relay sets on every one it sends."""
    import aio_pika

    saga_id = f"saga-{uuid.uuid4().hex}"
    return aio_pika.Message(
        body,
        message_id=uuid.uuid4().hex,
        correlation_id=saga_id,
        type="bench.event",
        timestamp=datetime.now(UTC),
        headers={
            "sagakit-saga-id": saga_id,
            "sagakit-saga-type": "bench_publish",
            "sagakit-step": "announce",
        },
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


def _bare_message(body: bytes) -> Any:
    """A message with an id and a content type only."""
    import aio_pika

    return aio_pika.Message(
        body,
        message_id=uuid.uuid4().hex,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        content_type="application/json",
    )


async def _floor(n: int, make: Callable[[bytes], Any]) -> dict[str, Any]:
    """Raw aio-pika: ``n`` confirmed publishes of ``make(body)``, ``BATCH`` in flight."""
    connection, name = await _bound_exchange()
    try:
        seconds = await _floor_block(connection, name, n, make)
    finally:
        await _drop(connection, name)
    return {"messages": n, "seconds": round(seconds, 3), "messages_per_s": round(n / seconds, 1)}


async def _floor_block(connection: Any, name: str, n: int, make: Callable[[bytes], Any]) -> float:
    """Seconds for ``n`` confirmed publishes to exchange ``name``, ``BATCH`` awaited at once."""
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    try:
        exchange = await channel.get_exchange(name)
        body = b'{"saga":"s","n":0,"pad":"' + b"x" * 200 + b'"}'
        t0 = time.perf_counter()
        for start in range(0, n, BATCH):
            await asyncio.gather(
                *(
                    exchange.publish(make(body), routing_key="bench.event", mandatory=True)
                    for _ in range(min(BATCH, n - start))
                )
            )
        return time.perf_counter() - t0
    finally:
        await channel.close()


async def relay_floor_bare(ctx: CaseContext) -> dict[str, Any]:
    """Raw aio-pika publishing messages with no properties beyond an id and a type."""
    return await _floor(ctx.number("messages"), _bare_message)


async def relay_throughput(ctx: CaseContext) -> dict[str, Any]:
    """The relay draining the outbox against raw aio-pika, in alternating blocks.

    Each of ``rounds`` rounds writes ``messages`` outbox rows (``per_saga`` per saga; not
    timed), then times one relay draining them and aio-pika publishing as many of the
    same messages, in the order A B, then B A: RabbitMQ's and the disk's speed drift by
    half over a minute here, so a ratio of two rates taken a minute apart measured the
    machine. The ratio is taken per round; its median is the result.
    """
    n, per_saga, rounds = ctx.number("messages"), ctx.number("per_saga"), ctx.number("rounds")
    db = ctx.database("relay")
    connection, name = await _bound_exchange()
    broker = sk.RabbitMQ(AMQP_URL, exchange=name)
    relay_s: list[float] = []
    floor_s: list[float] = []
    published = 0
    try:
        async with sk.Runtime(db.sagakit_url, sagas=[_publishing_saga(per_saga)], workers=16) as rt:

            async def relay_block() -> None:
                nonlocal published
                relay = Relay(rt.store, broker, owner="bench", batch=BATCH)
                t0 = time.perf_counter()
                counters = await relay.run(burst=True)
                relay_s.append(time.perf_counter() - t0)
                published += counters.published

            async def floor_block() -> None:
                floor_s.append(await _floor_block(connection, name, n, _full_message))

            await broker.connect()
            for r in range(rounds):
                await _fill_outbox(rt, n // per_saga, per_saga)
                blocks = (floor_block, relay_block) if r % 2 == 0 else (relay_block, floor_block)
                for block in blocks:
                    await block()
    finally:
        await broker.close()
        await _drop(connection, name)
    ratios = [f / r for r, f in zip(relay_s, floor_s, strict=True)]
    return {
        "messages": published,
        "rounds": rounds,
        "per_saga": per_saga,
        "messages_per_s": round(n / statistics.median(relay_s), 1),
        "floor_messages_per_s": round(n / statistics.median(floor_s), 1),
        "ratio_median": round(statistics.median(ratios), 3),
        "ratios": [round(x, 3) for x in ratios],
    }


async def _fill_outbox(rt: sk.Runtime, sagas: int, per_saga: int) -> None:
    """Run ``sagas`` publishing sagas and wait until all their messages are pending."""
    for start in range(0, sagas, 200):
        await asyncio.gather(*(rt.start("bench_publish") for _ in range(min(200, sagas - start))))
    while (await rt.store.outbox_backlog()).pending < sagas * per_saga:
        await asyncio.sleep(0.05)


async def relay_latency(ctx: CaseContext) -> dict[str, Any]:
    """Sequential sagas with the relay running: commit to confirm, per message."""
    n = ctx.number("sagas")
    db = ctx.database("relay_latency")
    connection, name = await _bound_exchange()
    broker = sk.RabbitMQ(AMQP_URL, exchange=name)
    try:
        async with sk.Runtime(
            db.sagakit_url, sagas=[_publishing_saga(1)], broker=broker, workers=1
        ) as rt:
            for _ in range(n):
                await rt.run("bench_publish")
            while (await rt.store.outbox_backlog()).pending:
                await asyncio.sleep(0.01)
            rows = await rt.store.list_outbox(OutboxQuery(limit=n + 10))
    finally:
        await _drop(connection, name)
    ms = sorted(
        (m.published_at - m.created_at).total_seconds() * 1000
        for m in rows
        if m.published_at is not None
    )
    return {
        "messages": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2),
        "max_ms": round(ms[-1], 2),
    }
