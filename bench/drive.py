"""Drive N saga runs with K in flight (asyncio or threads) and time each one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass


@dataclass(slots=True)
class Timing:
    """Wall time of a whole run and the latency of each saga in it, in seconds."""

    seconds: float
    latencies: list[float]


async def drive_async(
    run_one: Callable[[int], Awaitable[object]], n: int, in_flight: int, first: int = 0
) -> Timing:
    """Run ``run_one(i)`` for ``i`` in ``first .. first+n-1``, at most ``in_flight`` at once.

    With ``in_flight == 1`` the calls are awaited one after another, with no gather.
    """
    latencies: list[float] = []
    t0 = time.perf_counter()
    if in_flight == 1:
        for i in range(first, first + n):
            began = time.perf_counter()
            await run_one(i)
            latencies.append(time.perf_counter() - began)
        return Timing(time.perf_counter() - t0, latencies)
    # K long-lived workers pull the next index: at most K sagas are ever in flight, and no
    # task or coroutine exists for a saga that has not started (N may be 100,000).
    indexes = iter(range(first, first + n))

    async def worker() -> None:
        for i in indexes:
            began = time.perf_counter()
            await run_one(i)
            latencies.append(time.perf_counter() - began)

    await asyncio.gather(*(worker() for _ in range(min(in_flight, n))))
    return Timing(time.perf_counter() - t0, latencies)


def drive_threads(
    run_one: Callable[[int], object], n: int, in_flight: int, first: int = 0
) -> Timing:
    """Run ``run_one(i)`` for ``n`` values of ``i``; in a pool of ``in_flight`` threads if > 1."""
    latencies: list[float] = []

    def timed(i: int) -> None:
        began = time.perf_counter()
        run_one(i)
        latencies.append(time.perf_counter() - began)

    t0 = time.perf_counter()
    if in_flight == 1:
        for i in range(first, first + n):
            timed(i)
    else:
        with ThreadPoolExecutor(max_workers=in_flight) as pool:
            list(pool.map(timed, range(first, first + n)))
    return Timing(time.perf_counter() - t0, latencies)
