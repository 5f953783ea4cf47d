"""Memory: RSS after ``small`` and after ``large`` completed sagas in one process."""

from __future__ import annotations

import gc
import time
from typing import Any

import sagakit as sk
from bench.context import CaseContext
from bench.drive import drive_async
from bench.workload import SAGA_NAME, make_saga


def _rss_mib() -> float:
    import psutil  # type: ignore[import-untyped, unused-ignore]  # the bench extra

    gc.collect()
    return round(float(psutil.Process().memory_info().rss) / 2**20, 2)


async def memory(ctx: CaseContext) -> dict[str, Any]:
    """Run ``large`` sagas ``in_flight`` at a time; sample RSS at ``warmup``, ``small``, ``large``."""
    small, large = ctx.number("small"), ctx.number("large")
    in_flight, warmup = ctx.number("in_flight"), ctx.number("warmup")
    db = ctx.database("memory")

    async with sk.Runtime(db.sagakit_url, sagas=[make_saga()]) as rt:

        async def run_one(i: int) -> None:
            result = await rt.run(SAGA_NAME, {"i": i})
            if result.status != sk.SagaStatus.COMPLETED:
                raise RuntimeError(f"saga {result.id} ended {result.status}")

        samples: list[dict[str, float]] = []
        done = 0
        t0 = time.perf_counter()
        for mark in (warmup, small, large):
            await drive_async(run_one, mark - done, in_flight, first=done)
            done = mark
            samples.append(
                {
                    "sagas": mark,
                    "rss_mib": _rss_mib(),
                    "gc_objects": len(gc.get_objects()),
                    "seconds": round(time.perf_counter() - t0, 2),
                }
            )
    at_small, at_large = samples[1], samples[2]
    return {
        "in_flight": in_flight,
        "samples": samples,
        "rss_small_mib": at_small["rss_mib"],
        "rss_large_mib": at_large["rss_mib"],
        "growth_ratio": round(at_large["rss_mib"] / at_small["rss_mib"], 4),
        "gc_objects_growth": int(at_large["gc_objects"] - at_small["gc_objects"]),
    }
