"""Several worker processes on one database: ``processes`` workers, ``in_flight`` each.

``sagas`` sagas are enqueued first (``Runtime.start``, not timed); then the processes,
started and ready, are told to go at once, and the time until the last one has drained
the queue is taken. Claims use ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so workers do
not wait on each other's rows; what contention costs shows as sagas/s per process, and
``claimed_twice`` (a saga claimed by a second worker after the first lost it) and
``lost`` (checkpoints refused because another worker had moved the saga on) say whether
any saga was run twice. On a two-core machine more processes share the same cores:
this measures contention, not scale.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from bench.cases.recovery import _leave_pending
from bench.context import CaseContext
from bench.stats import rate
from bench.workload import STEPS, make_saga


async def _spawn(url: str, in_flight: int, name: str) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.process_worker",
        url,
        str(in_flight),
        name,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await process.stdout.readline()
    if line.strip() != b"READY":
        raise RuntimeError(f"worker {name} did not start: {line!r}")
    return process


async def _result(process: asyncio.subprocess.Process) -> dict[str, Any]:
    out, _ = await process.communicate()
    for line in out.decode().splitlines():
        if line.startswith("RESULT "):
            parsed: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
            return parsed
    raise RuntimeError(f"a worker process ended {process.returncode} without a result")


async def processes(ctx: CaseContext) -> dict[str, Any]:
    """Time ``processes`` worker processes draining ``sagas`` queued sagas."""
    n, count, in_flight = ctx.number("sagas"), ctx.number("processes"), ctx.number("in_flight")
    db = ctx.database("processes")
    await _leave_pending(db.sagakit_url, make_saga(), n)
    workers = [await _spawn(db.sagakit_url, in_flight, f"bench-proc-{i}") for i in range(count)]
    t0 = time.perf_counter()
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write(b"GO\n")
        await worker.stdin.drain()
    results = await asyncio.gather(*(_result(w) for w in workers))
    seconds = time.perf_counter() - t0
    completed = sum(r["completed"] for r in results)
    if completed != n:
        raise RuntimeError(f"{count} processes completed {completed} of {n} sagas: {results}")
    return {
        "processes": count,
        "in_flight": in_flight,
        "sagas": n,
        "seconds": round(seconds, 4),
        "sagas_per_s": rate(n, seconds),
        "steps_per_s": rate(n * STEPS, seconds),
        "claimed_twice": sum(r["claimed"] for r in results) - n,
        "lost": sum(r["lost"] for r in results),
        "per_process": results,
    }
