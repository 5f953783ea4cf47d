"""One worker process of the ``processes`` case: ``python -m bench.process_worker URL K NAME``.

It opens the store, says ``READY``, waits for ``GO`` on stdin (so every process starts
draining at once, after its imports), runs a ``Worker`` with ``K`` in flight until nothing
is runnable, and prints its counters as one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import sagakit as sk
from bench.workload import SAGA_NAME, make_saga
from sagakit.leases import LeaseKeeper


async def drain(url: str, concurrency: int, owner: str) -> dict[str, object]:
    """Drain the queue with one worker; return its counters and how long it ran."""
    store = sk.open_store(url)
    await store.open()
    keeper = LeaseKeeper(store, owner, lease_seconds=30.0)
    worker = sk.Worker(store, {SAGA_NAME: make_saga()}, leases=keeper, concurrency=concurrency)
    print("READY", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    t0 = time.perf_counter()
    try:
        counters = await worker.run(burst=True)
    finally:
        await keeper.stop()
        await store.close()
    return {
        "seconds": round(time.perf_counter() - t0, 4),
        "claimed": counters.claimed,
        "completed": counters.completed,
        "released": counters.released,
        "lost": counters.lost,
    }


if __name__ == "__main__":
    url, k, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    print("RESULT " + json.dumps(asyncio.run(drain(url, k, name))), flush=True)
