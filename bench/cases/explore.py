"""The testing toolkit: ``sagakit.testing.explore`` over a 5-step saga with compensations."""

from __future__ import annotations

import time
from typing import Any

import sagakit as sk
from bench.context import CaseContext
from sagakit.testing import explore


def _five_steps() -> sk.Saga:
    saga = sk.Saga("bench_explore")
    for index in range(5):

        async def action(ctx: sk.StepContext, index: int = index) -> dict[str, Any]:
            return {f"step{index}": "ok"}

        async def undo(ctx: sk.StepContext) -> None:
            return None

        saga.add(sk.Step(name=f"step{index}", action=action, compensate=undo))
    return saga


async def explore_five_steps(ctx: CaseContext) -> dict[str, Any]:
    """Explore every failure point of the saga ``rounds`` times; report seconds per pass."""
    rounds = ctx.number("rounds")
    saga = _five_steps()
    points = 0
    t0 = time.perf_counter()
    for _ in range(rounds):
        report = await explore(saga, {"order": 1})
        report.assert_ok()
        points = len(report.runs)
    seconds = (time.perf_counter() - t0) / rounds
    return {"points": points, "rounds": rounds, "seconds_per_explore": round(seconds, 4)}
