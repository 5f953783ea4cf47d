"""The relay and consumers on a real NATS JetStream: headers, acks, dedup, dead letters."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

import sagakit as sk
from sagakit.messaging import Envelope
from sagakit.messaging.brokers.nats import subject_filter
from sagakit.store.records import OutboxQuery, OutboxState

from ..servers import drop_nats_streams, nats_url
from .test_relay import publishing_saga, until


@pytest.fixture
async def stream() -> AsyncIterator[str]:
    """A fresh stream name; the stream and its dead-letter stream are deleted afterwards."""
    url = nats_url()
    name = f"t_{uuid.uuid4().hex[:10]}"
    yield name
    await drop_nats_streams(url, name)


async def _stored(url: str, subject: str) -> list[Any]:
    """Every message JetStream stored under ``subject``, as another service would read it."""
    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        subscription = await js.pull_subscribe(subject, durable=None)
        got: list[Any] = []
        while True:
            try:
                batch = await subscription.fetch(10, timeout=0.5)
            except nats.errors.TimeoutError:
                return got
            for message in batch:
                await message.ack()
            got += batch
    finally:
        await nc.close()


def test_bindings_become_subjects_or_the_whole_stream() -> None:
    # I expect "*" to stay, a trailing "#" to be ">", and what NATS cannot say to be None
    assert subject_filter("s", "orders.created") == "s.orders.created"
    assert subject_filter("s", "orders.*") == "s.orders.*"
    assert subject_filter("s", "orders.#") == "s.orders.>"
    assert subject_filter("s", "#") is None
    assert subject_filter("s", "a.#.b") is None


async def test_published_messages_carry_what_a_consumer_relies_on(stream: str) -> None:
    url = nats_url()
    broker = sk.NatsJetStream(url, stream=stream)
    async with sk.Runtime("memory://", sagas=[publishing_saga()], broker=broker) as rt:
        # When a saga publishes from its steps
        await rt.run("pub", {"topic": "created"}, saga_id="order-1")
        await until(lambda: rt.relay is not None and rt.relay.counters.published == 3, "3 acks")
        rows = {m.message_id: m for m in await rt.store.list_outbox(OutboxQuery())}
    got = await _stored(url, f"{stream}.orders.>")
    # I expect them stored in the saga's order, with the outbox row's identity as headers
    assert [m.subject for m in got] == [
        f"{stream}.orders.created",
        f"{stream}.orders.created",
        f"{stream}.orders.done",
    ]
    assert [Envelope.decode(m.data, "t")["n"] for m in got] == [0, 1, 2]
    first = got[0].headers
    assert first["Nats-Msg-Id"] in rows
    assert rows[first["Nats-Msg-Id"]].state is OutboxState.PUBLISHED
    assert first["sagakit-correlation-id"] == "order-1"
    assert first["sagakit-topic"] == "orders.created"
    assert first["content-type"] == "application/json"
    assert first["sagakit-timestamp"]
    assert (first["sagakit-saga-id"], first["sagakit-saga-type"]) == ("order-1", "pub")
    assert (first["sagakit-step"], first["h"]) == ("first", "1")  # NATS headers are text


async def test_a_republished_message_is_stored_once(stream: str) -> None:
    url = nats_url()
    broker = sk.NatsJetStream(url, stream=stream)
    try:
        # When the relay publishes one outbox message twice (its mark was lost, say)
        envelope = Envelope("orders.created", {"n": 1})
        await broker.publish(envelope)
        await broker.publish(envelope)
    finally:
        await broker.close()
    # I expect JetStream to keep one copy: the message id is the dedup key
    assert len(await _stored(url, f"{stream}.>")) == 1


async def test_a_poison_message_is_dead_lettered_and_the_others_flow(stream: str) -> None:
    url = nats_url()
    broker = sk.NatsJetStream(url, stream=stream)
    applied: list[int] = []
    deliveries: dict[int, int] = {}

    async def handler(envelope: Envelope) -> None:
        n = envelope.payload["n"]
        deliveries[n] = envelope.deliveries
        if n == 3:
            raise RuntimeError("this one always fails")
        applied.append(n)

    try:
        stop = await broker.consume(f"{stream}.q", ["work.*"], handler, max_deliveries=3)
        for n in range(6):
            await broker.publish(Envelope("work.item", {"n": n}))
        await until(lambda: sorted(applied) == [0, 1, 2, 4, 5], "the healthy messages")
        await until(lambda: deliveries.get(3) == 3, "three deliveries of the poison one")
        await stop()
    finally:
        await broker.close()
    # I expect the poison message in the dead-letter stream, once
    dead = await _stored(url, f"{stream}-dead.>")
    assert [Envelope.decode(m.data, "t") for m in dead] == [{"n": 3}]
    assert dead[0].subject == f"{stream}-dead.{stream}_q"
