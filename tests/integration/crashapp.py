"""Sagas for the crash tests. Every action notes what it does in the file $CRASH_LOG.

A line is ``<time> <what> <step> <saga id> <attempt> <pid>``; the context steers each
saga: ``fail`` (a step that always raises), ``poison`` (a step that kills its worker),
``sleep`` (seconds per step name), ``hang`` (a step whose first run never ends).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import sagakit as sk

STEPS = ["s0", "s1", "s2", "s3"] + (["s4"] if os.environ.get("CRASH_VARIANT") == "b" else [])


def note(what: str, step: str, ctx: sk.StepContext) -> None:
    with open(os.environ["CRASH_LOG"], "a") as f:
        f.write(f"{time.time():.3f} {what} {step} {ctx.saga_id} {ctx.attempt} {os.getpid()}\n")


def runs(step: str, ctx: sk.StepContext) -> int:
    """How often ``step`` of this saga has started, in any process (this run included)."""
    with open(os.environ["CRASH_LOG"]) as f:
        return sum(1 for line in f if f" do {step} {ctx.saga_id} " in line)


def make_step(name: str) -> sk.Step:
    async def action(ctx: sk.StepContext) -> dict[str, Any]:
        note("do", name, ctx)
        if ctx.get("poison") == name:
            os._exit(3)
        if ctx.get("hang") == name and runs(name, ctx) == 1:
            await asyncio.Event().wait()
        await asyncio.sleep(ctx.get("sleep", {}).get(name, 0.02))
        if ctx.get("fail") == name:
            raise RuntimeError(f"{name} always fails")
        note("done", name, ctx)
        return {name: ctx.attempt}

    async def undo(ctx: sk.StepContext) -> None:
        note("undo", name, ctx)
        await asyncio.sleep(ctx.get("sleep", {}).get(f"undo-{name}", 0.02))
        note("undone", name, ctx)

    return sk.Step(name, action, compensate=undo)


crashy = sk.Saga(
    "crashy",
    steps=[make_step(n) for n in STEPS],
    retry=sk.Retry(max_attempts=3, initial=0.01, backoff=1.0, jitter=0),
)

deadline = sk.Saga("deadline", steps=[make_step("d0"), make_step("d1")], timeout=2)


async def flaky(ctx: sk.StepContext) -> dict[str, Any]:
    note("do", "r0", ctx)
    if ctx.attempt == 1:
        raise RuntimeError("first attempt fails")
    return {"r0": ctx.attempt}


retrying = sk.Saga(
    "retrying",
    steps=[sk.Step("r0", flaky, retry=sk.Retry(max_attempts=2, initial=3.0, jitter=0))],
)

sagas = [crashy, deadline, retrying]
