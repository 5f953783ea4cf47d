"""Per-step cost against one raw commit, measured in alternating blocks in one process.

fsync latency on a shared virtual disk drifts by 2x over minutes, so a ratio of two rates
measured minutes apart says more about the disk than about sagakit. Here blocks of raw
single-row commits (aiosqlite or asyncpg, as in ``floor.sequential``) and blocks of
sequential sagas (the same number of steps) alternate, A B B A, on two databases of the
backend (two files in one directory, or two schemas on one server); the ratio is taken
per round and its median reported.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import sagakit as sk
from bench.cases.floor import RawConnection
from bench.context import CaseContext
from bench.workload import SAGA_NAME, STEPS, make_saga


async def step_cost_paired(ctx: CaseContext) -> dict[str, Any]:
    """Alternate ``rounds`` blocks of ``sagas_per_round`` sagas with as many raw commits."""
    rounds, per_round = ctx.number("rounds"), ctx.number("sagas_per_round")
    raw = await RawConnection(ctx.database("raw")).open()
    saga_db = ctx.database("sagakit")
    commit_ms: list[float] = []
    step_ms: list[float] = []

    async def raw_block() -> None:
        t0 = time.perf_counter()
        for _ in range(per_round * STEPS):
            await raw.commit(0)
        commit_ms.append((time.perf_counter() - t0) * 1000 / (per_round * STEPS))

    try:
        async with sk.Runtime(saga_db.sagakit_url, sagas=[make_saga()]) as rt:

            async def saga_block() -> None:
                t0 = time.perf_counter()
                for i in range(per_round):
                    await rt.run(SAGA_NAME, {"i": i})
                step_ms.append((time.perf_counter() - t0) * 1000 / (per_round * STEPS))

            for i in range(10):  # warm both paths up
                await rt.run(SAGA_NAME, {"i": -i})
                await raw.commit(0)
            for r in range(rounds):
                blocks = (raw_block, saga_block) if r % 2 == 0 else (saga_block, raw_block)
                for block in blocks:
                    await block()
    finally:
        await raw.close()
    per_round_ratio = [s / c for s, c in zip(step_ms, commit_ms, strict=True)]
    return {
        "rounds": rounds,
        "steps_per_block": per_round * STEPS,
        "step_ms_median": round(statistics.median(step_ms), 4),
        "raw_commit_ms_median": round(statistics.median(commit_ms), 4),
        "ratio_median": round(statistics.median(per_round_ratio), 3),
        "ratio_min": round(min(per_round_ratio), 3),
        "ratio_max": round(max(per_round_ratio), 3),
        "step_ms_per_round": [round(v, 4) for v in step_ms],
        "raw_commit_ms_per_round": [round(v, 4) for v in commit_ms],
    }
