"""A consumer process for the inbox crash test: applies messages by appending to a file.

``python consumerapp.py DB BROKER EXCHANGE QUEUE OUT`` (BROKER: an ``amqp://`` or a
``nats://`` URL; EXCHANGE: its exchange or stream); with ``SAGAKIT_KILL_AFTER=inbox_marked:1``
it SIGKILLs itself right after recording its first message in the inbox, before the ack.
"""

from __future__ import annotations

import asyncio
import sys

import sagakit as sk


class PrintDuplicates(sk.SagaHooks):
    def message_duplicate(self, consumer: str, message_id: str) -> None:
        print(f"duplicate {message_id}", flush=True)


async def main() -> None:
    db, url, exchange, queue, out = sys.argv[1:6]

    async def apply(message: sk.Envelope) -> None:
        with open(out, "a") as f:
            f.write(f"{message.message_id} {message.payload['n']}\n")

    # one message at a time, so the kill lands between one apply and its ack
    broker: sk.Broker
    if url.startswith("nats://"):
        # JetStream redelivers an unacknowledged message once its ack wait runs out (a dead
        # consumer's connection does not end it, as it does on RabbitMQ): keep it short
        broker = sk.NatsJetStream(url, stream=exchange, prefetch=1, ack_wait=2.0)
    else:
        broker = sk.RabbitMQ(url, exchange=exchange, prefetch=1)
    async with sk.Runtime(db, workers=0, broker=broker, hooks=[PrintDuplicates()]) as rt:
        await rt.consume("ledger.#", apply, queue=queue)
        print("consuming", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
