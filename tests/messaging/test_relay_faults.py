"""Relay processes SIGKILLed mid-batch and the broker restarted mid-run: nothing lost or reordered.

Run on RabbitMQ (``rabbitmqctl stop_app`` / ``start_app``) and on NATS JetStream (the
server process stopped and started again on its store directory).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import sagakit as sk
from sagakit.messaging import Envelope
from sagakit.messaging.brokers.rabbitmq import RabbitMQ
from sagakit.store.records import OutboxQuery, OutboxState

from ..servers import drop_nats_streams, nats_url, rabbitmq_url, store_url_for, unavailable
from .relayapp import order

HERE = Path(__file__).parent
SAGAS = int(os.environ.get("SAGAKIT_RELAY_FAULT_SAGAS", "2000"))
MESSAGES = 3 * SAGAS


@pytest.fixture
def db(tmp_path: Path) -> Iterator[str]:
    with store_url_for("postgres", tmp_path) as url:
        yield url


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


#: How .ci/run starts the local NATS server: the same again after the test stops it.
NATS_SERVER = "/usr/sbin/nats-server"
NATS_ARGS = ["-a", "127.0.0.1", "-p", "4222", "-js", "-sd", "/var/lib/nats-server"]
NATS_ARGS += ["-l", "/var/log/nats-server.log"]


def restart_nats() -> None:
    """Stop the local NATS server and start it again on the same store directory."""
    subprocess.run(
        ["start-stop-daemon", "--stop", "--retry", "TERM/10/KILL/5", "--exec", NATS_SERVER],
        check=True,
        capture_output=True,
        timeout=60,
    )
    subprocess.run(
        ["start-stop-daemon", "--start", "--background", "--exec", NATS_SERVER, "--", *NATS_ARGS],
        check=True,
        capture_output=True,
        timeout=60,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", 4222), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, "NATS did not come back"
            time.sleep(0.1)


def restart_broker(kind: str) -> None:
    """Stop the test broker and start it again; return once it accepts connections."""
    if kind == "nats":
        restart_nats()
        return
    rabbitmqctl("stop_app")
    rabbitmqctl("start_app")
    rabbitmqctl("await_startup")


def spawn_relay(
    db: str, broker_url: str, exchange: str, out: Path, *args: str
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "RELAY_DB": db,
        "RELAY_BROKER": broker_url,
        "RELAY_EXCHANGE": exchange,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    argv = ["-m", "sagakit", "relay", "--app", "relayapp:runtime", "--batch", "50"]
    return subprocess.Popen(
        [sys.executable, *argv, "--claim-seconds", "2", *args],
        env=env,
        stdout=out.open("ab"),
        stderr=subprocess.STDOUT,
    )


@pytest.mark.parametrize("kind", ["rabbitmq", "nats"])
async def test_killed_relays_and_a_broker_restart_lose_and_reorder_nothing(
    db: str, tmp_path: Path, kind: str
) -> None:
    url = rabbitmq_url() if kind == "rabbitmq" else nats_url()
    if kind == "nats" and not Path(NATS_SERVER).exists():
        unavailable("a NATS server this test can restart", FileNotFoundError(NATS_SERVER))
    exchange = f"t_{uuid.uuid4().hex[:10]}"
    queue = f"{exchange}.q"
    received: list[Envelope] = []

    async def record(envelope: Envelope) -> None:
        received.append(envelope)

    # a consumer that died unacknowledged is redelivered after its ack wait on NATS
    consumer: sk.Broker = (
        RabbitMQ(url, exchange=exchange)
        if kind == "rabbitmq"
        else sk.NatsJetStream(url, stream=exchange, ack_wait=2.0)
    )
    stop_consuming = await consumer.consume(queue, ["shop.#"], record)
    # Given 2,000 sagas that each wrote 3 messages, and two relay processes on PostgreSQL
    async with sk.Runtime(db, sagas=[order], workers=8) as rt:
        for chunk in range(0, SAGAS, 100):  # started 100 at a time: one group commit each
            await asyncio.gather(
                *(rt.start("order", saga_id=f"o{i:04}") for i in range(chunk, chunk + 100))
            )
        await until(rt, lambda b: b.pending == MESSAGES, "every saga checkpointed its messages")
    started = time.monotonic()
    log = tmp_path / "relays.out"
    relays = [spawn_relay(db, url, exchange, log) for _ in range(2)]
    kills = 0
    restarted = False
    try:
        deadline = time.monotonic() + 300
        unique = 0
        while unique < MESSAGES:
            assert time.monotonic() < deadline, f"{unique} of {MESSAGES} arrived"
            unique = len({e.message_id for e in received})
            # When a relay is SIGKILLed mid-batch, three times
            if kills < 3 and unique >= (kills + 1) * MESSAGES // 6:
                victim = relays[kills % 2]
                victim.send_signal(signal.SIGKILL)
                victim.wait(timeout=30)
                relays[kills % 2] = spawn_relay(db, url, exchange, log)
                kills += 1
                print(f"{time.monotonic() - started:.1f}s: relay killed at {unique} messages")
            # and the broker is stopped and started once
            if not restarted and unique >= MESSAGES * 2 // 3:
                restart_broker(kind)
                restarted = True
                print(f"{time.monotonic() - started:.1f}s: {kind} restarted at {unique} messages")
            await asyncio.sleep(0.02)
    finally:
        for proc in relays:
            proc.kill()
            proc.wait()
        await stop_consuming()
        await consumer.close()
        if kind == "rabbitmq":
            await delete(url, exchange, queue)
        else:
            await drop_nats_streams(url, exchange)
    # I expect every message arrived, a duplicate only ever with its message id, in order
    by_id: dict[str, tuple[str, int]] = {}
    for envelope in received:
        key = (envelope.payload["saga"], envelope.payload["n"])
        assert by_id.setdefault(envelope.message_id, key) == key, "one id, two messages"
    assert sorted(by_id.values()) == sorted((f"o{i:04}", n) for i in range(SAGAS) for n in range(3))
    first_seen: dict[str, list[int]] = {}
    seen: set[str] = set()
    for envelope in received:
        if envelope.message_id not in seen:
            seen.add(envelope.message_id)
            first_seen.setdefault(envelope.payload["saga"], []).append(envelope.payload["n"])
    out_of_order = [s for s, ns in first_seen.items() if ns != [0, 1, 2]]
    assert out_of_order == [], out_of_order[:5]
    store = sk.open_store(db)
    await store.open(migrate=False)
    try:
        rows = await store.list_outbox(OutboxQuery(limit=MESSAGES + 1))
    finally:
        await store.close()
    assert all(m.state is OutboxState.PUBLISHED for m in rows)
    print(
        f"\nrelay faults: {SAGAS} sagas, {MESSAGES} messages, {kills} relay kills, "
        f"1 {kind} restart: {len(received)} deliveries, "
        f"{len(received) - MESSAGES} duplicates (same message_id), 0 lost, 0 out of order, "
        f"in {time.monotonic() - started:.1f}s"
    )
    assert kills == 3 and restarted


async def until(rt: sk.Runtime, check: object, what: str, timeout: float = 300) -> None:
    """Wait until ``check(outbox backlog)`` holds."""
    deadline = time.monotonic() + timeout
    while not check(await rt.store.outbox_backlog()):  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def delete(url: str, exchange: str, queue: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for name in (queue, f"{queue}.dead"):
            await channel.queue_delete(name)
        for name in (exchange, f"{exchange}.dead"):
            await channel.exchange_delete(name)
