"""A relay process on PostgreSQL is woken by another process's commit (LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import sagakit as sk
from sagakit.messaging import Envelope
from sagakit.messaging.brokers.rabbitmq import RabbitMQ

from ..servers import rabbitmq_url, store_url_for
from .relayapp import order
from .test_relay_faults import delete, spawn_relay


@pytest.fixture
def db(tmp_path: Path) -> Iterator[str]:
    with store_url_for("postgres", tmp_path) as url:
        yield url


async def test_a_relay_that_would_poll_in_ten_minutes_publishes_within_milliseconds(
    db: str, tmp_path: Path
) -> None:
    url = rabbitmq_url()
    exchange = f"t_{uuid.uuid4().hex[:10]}"
    queue = f"{exchange}.q"
    arrived: dict[str, float] = {}

    async def record(envelope: Envelope) -> None:
        arrived.setdefault(envelope.message_id, time.monotonic())

    consumer = RabbitMQ(url, exchange=exchange)
    stop = await consumer.consume(queue, ["shop.#"], record)
    log = tmp_path / "relay.out"
    async with sk.Runtime(db, sagas=[order], workers=2) as rt:
        # Given a relay process that polls every ten minutes, listening on PostgreSQL
        relay = spawn_relay(db, url, exchange, log, "--poll", "600")
        try:
            deadline = time.monotonic() + 30
            while "listening for outbox messages" not in log.read_text():
                assert time.monotonic() < deadline, log.read_text()
                await asyncio.sleep(0.05)
            latencies = []
            for i in range(20):
                # When this process commits a saga's messages
                committed = time.monotonic()
                await rt.run("order", saga_id=f"w{i}")
                while len(arrived) < 3 * (i + 1):
                    assert time.monotonic() < committed + 30, "the relay was not woken"
                    await asyncio.sleep(0.001)
                latencies.append(max(arrived.values()) - committed)
        finally:
            relay.kill()
            relay.wait()
            await stop()
            await consumer.close()
            await delete(url, exchange, queue)
    # I expect each published at once, not at the next poll
    p50 = statistics.median(latencies)
    print(
        f"\ncommit -> consumed, 20 sagas x 3 messages: p50 {p50 * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
    )
