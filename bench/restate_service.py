"""The bench workload as a Restate service: five ``ctx.run`` steps, each journaled.

Served by Hypercorn in a process of its own (``python -m hypercorn
bench.restate_service:app``), as a Restate deployment runs beside the server; the
Restate server keeps the journal in its own durable log.
"""

from __future__ import annotations

from typing import Any

import restate

from bench.workload import STEPS, step_output

saga = restate.Service("bench_noop5")


async def _step(index: int) -> dict[str, Any]:
    return step_output(index)


@saga.handler()
async def run(ctx: restate.Context, request: dict[str, Any]) -> dict[str, Any]:
    """Run the five steps one after another, each result journaled before the next."""
    context: dict[str, Any] = dict(request)
    for index in range(STEPS):
        context.update(await ctx.run_typed(f"step{index}", _step, restate.RunOptions(), index))
    return context


#: The ASGI application Hypercorn serves.
app = restate.app(services=[saga])
