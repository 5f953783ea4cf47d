"""A consumer SIGKILLed between applying a message and acking it does not apply it twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import sagakit as sk
from sagakit.messaging import Envelope
from sagakit.messaging.brokers.rabbitmq import RabbitMQ

from ..servers import drop_nats_streams, nats_url, rabbitmq_url
from .test_relay_faults import delete

HERE = Path(__file__).parent


def spawn(args: list[str], out: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(HERE / "consumerapp.py"), *args],
        env={**os.environ, **(env or {})},
        stdout=out.open("ab"),
        stderr=subprocess.STDOUT,
    )


async def wait_for(check: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def _until_marked(db: str, queue: str, ids: list[str], timeout: float = 30) -> None:
    from sagakit.store.records import InboxMark

    store = sk.open_store(db)
    await store.open(migrate=False)
    try:
        deadline = time.monotonic() + timeout
        for message_id in ids:
            while not await store.inbox_seen(InboxMark(queue, message_id)):
                assert time.monotonic() < deadline, f"{message_id} never marked"
                await asyncio.sleep(0.02)
    finally:
        await store.close()


@pytest.mark.parametrize("kind", ["rabbitmq", "nats"])
async def test_the_redelivered_message_is_recognised_by_the_inbox(
    tmp_path: Path, kind: str
) -> None:
    url = rabbitmq_url() if kind == "rabbitmq" else nats_url()
    exchange = f"t_{uuid.uuid4().hex[:10]}"
    queue = f"{exchange}.q"
    db = f"sqlite:///{tmp_path}/consumer.db"
    applied, out1, out2 = tmp_path / "applied.txt", tmp_path / "c1.out", tmp_path / "c2.out"
    applied.touch()
    args = [db, url, exchange, queue, str(applied)]
    # Given a consumer that dies right after applying and recording its first message
    first = spawn(args, out1, {"SAGAKIT_KILL_AFTER": "inbox_marked:1"})
    publisher: sk.Broker = (
        RabbitMQ(url, exchange=exchange)
        if kind == "rabbitmq"
        else sk.NatsJetStream(url, stream=exchange)
    )
    try:
        await wait_for(lambda: "consuming" in out1.read_text(), "the first consumer")
        ids = [uuid.uuid4().hex for _ in range(5)]
        for n, message_id in enumerate(ids):
            await publisher.publish(Envelope("ledger.entry", {"n": n}, message_id=message_id))
        assert first.wait(timeout=30) == -signal.SIGKILL
        # When a new consumer takes over the queue
        second = spawn(args, out2)
        try:
            lines = lambda: applied.read_text().splitlines()  # noqa: E731
            await wait_for(lambda: len(lines()) >= 5, "every message applied")
            await wait_for(lambda: "duplicate" in out2.read_text(), "the redelivery")
            # a handler writes its line before its inbox mark: wait for every mark too
            await _until_marked(db, queue, ids)
        finally:
            second.kill()
            second.wait()
    finally:
        if first.poll() is None:
            first.kill()
        await publisher.close()
        if kind == "rabbitmq":
            await delete(url, exchange, queue)
        else:
            await drop_nats_streams(url, exchange)
    # I expect each message applied exactly once; the redelivered one skipped by the inbox
    assert sorted(lines()) == sorted(f"{m} {n}" for n, m in enumerate(ids))
    assert f"duplicate {ids[0]}" in out2.read_text()
    store = sk.open_store(db)
    await store.open(migrate=False)
    try:
        from sagakit.store.records import InboxMark

        for message_id in ids:
            assert await store.inbox_seen(InboxMark(queue, message_id))
    finally:
        await store.close()
