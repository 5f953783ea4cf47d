"""A process that leaves durable work behind and is SIGKILLed: ``killedapp.py URL WHAT``.

``schedule``: submits order k-1 with a 1 s payment timeout, then dies before it is due.
``wait``: starts purchase w-1 and dies once a worker has parked it at its wait step.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import sagakit as sk
from tests.machines.shopapp import definitions


async def main(url: str, what: str) -> None:
    async with sk.Runtime(url, sagas=definitions, poll_interval=0.05) as rt:
        if what == "schedule":
            await rt.send("OrderSubmitted", {"order_id": "k-1", "total": 1, "timeout": 1})
        else:
            await rt.start("purchase", {"n": 1}, saga_id="w-1")
            while (await rt.get("w-1")).status != sk.SagaStatus.WAITING:
                await asyncio.sleep(0.02)
        print("left", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
