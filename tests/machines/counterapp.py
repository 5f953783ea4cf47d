"""One process of the hot-instance test: ``python counterapp.py URL PROCESS COUNT GO_FILE``.

Waits until ``GO_FILE`` exists, so that every process starts sending at once, then sends
``COUNT`` increments to one instance, eight at a time, each with its own message id.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import sagakit as sk

counter = sk.StateMachine("counter", correlate_by="key")
(counting,) = counter.states("Counting")


@counter.initially("Add")
def first(instance: sk.Instance, event: dict[str, Any]) -> sk.State:
    instance.data["n"] = 1
    return counting


@counter.during(counting, "Add")
def add(instance: sk.Instance, event: dict[str, Any]) -> None:
    instance.data["n"] += 1


async def main(url: str, process: str, count: int, go: Path) -> None:
    async with sk.Runtime(url, sagas=[counter], workers=0) as rt:
        print("ready", flush=True)
        while not go.exists():  # a file the test creates once every process is ready
            await asyncio.sleep(0.01)
        gate = asyncio.Semaphore(8)

        async def one(i: int) -> sk.Outcome:
            async with gate:
                result = await rt.send("Add", {"key": "hot"}, message_id=f"{process}-{i}")
                return result.outcome

        outcomes = await asyncio.gather(*(one(i) for i in range(count)))
        print("outcomes", sorted({o.value for o in outcomes}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])))
