"""sagakit: the 5-step no-op saga through ``Runtime.run``, K sagas in flight."""

from __future__ import annotations

from typing import Any

import sagakit as sk
from bench.context import CaseContext
from bench.drive import drive_async
from bench.sqltrace import METHODS, SqlTrace, per_unit
from bench.stats import latency_ms, rate
from bench.workload import SAGA_NAME, STEPS, StepClock, make_saga
from sagakit.store.sql import SqlStore


def store_counters(rt: sk.Runtime) -> tuple[int, int]:
    """Return the store's own (statements, commits) counters."""
    store = rt.store
    if not isinstance(store, SqlStore):
        raise SystemExit(f"expected a SqlStore, got {store!r}")
    return store.statements, store.commits


async def sagakit_run(ctx: CaseContext) -> dict[str, Any]:
    """Run ``sagas`` sagas with ``in_flight`` at once; report rates, latencies and SQL per step."""
    n, in_flight, warmup = ctx.number("sagas"), ctx.number("in_flight"), ctx.number("warmup")
    fail_at = ctx.params.get("fail_at")
    expected = sk.SagaStatus.COMPLETED if fail_at is None else sk.SagaStatus.COMPENSATED
    clock = StepClock()
    saga = make_saga(clock, fail_at=fail_at)
    db = ctx.database("sagakit")
    trace = SqlTrace()
    trace.attach_everywhere(db.backend)
    rt = sk.Runtime(db.sagakit_url, sagas=[saga], hooks=[clock])

    async def run_one(i: int) -> None:
        result = await rt.run(SAGA_NAME, {"i": i})
        if result.status != expected:
            raise RuntimeError(f"saga {result.id} ended {result.status}")

    async with rt:
        await drive_async(run_one, warmup, in_flight, first=-warmup)
        clock.latencies.clear()
        stmts0, commits0 = store_counters(rt)
        traced0 = trace.snapshot()
        timing = await drive_async(run_one, n, in_flight)
        stmts1, commits1 = store_counters(rt)
        traced1 = trace.snapshot()
        start_cost = await _start_cost(rt, trace, max(min(n, 100), 20))
    steps = n * STEPS
    statements = stmts1 - stmts0
    commits = commits1 - commits0
    checkpoint_statements = statements - n * start_cost["store_statements_per_start"]
    checkpoint_commits = commits - n * start_cost["store_commits_per_start"]
    return {
        "in_flight": in_flight,
        "sagas": n,
        "steps": steps,
        "seconds": round(timing.seconds, 4),
        "sagas_per_s": rate(n, timing.seconds),
        "steps_per_s": rate(steps, timing.seconds),
        "checkpoints_per_s": rate(commits, timing.seconds),
        "fail_at": fail_at,
        "saga_latency_ms": latency_ms(timing.latencies),
        "step_latency_ms": latency_ms(clock.latencies),
        "store_counters": {
            "statements_per_step": round(statements / steps, 3),
            "commits_per_step": round(commits / steps, 3),
            "checkpoint_statements_per_step": round(checkpoint_statements / steps, 3),
            "checkpoint_commits_per_step": round(checkpoint_commits / steps, 3),
        },
        "sql_trace": per_unit(traced0, traced1, steps, "step"),
        "sql_trace_method": METHODS[db.backend],
        "start_cost": start_cost,
    }


async def _start_cost(rt: sk.Runtime, trace: SqlTrace, k: int) -> dict[str, float]:
    """Measure what starting one saga costs (``rt.start``: its row and first event)."""
    stmts0, commits0 = store_counters(rt)
    traced0 = trace.snapshot()
    for i in range(k):
        await rt.start(SAGA_NAME, {"i": i}, saga_id=f"start-cost-{i}")
    stmts1, commits1 = store_counters(rt)
    traced = per_unit(traced0, trace.snapshot(), k, "start")
    return {
        "store_statements_per_start": round((stmts1 - stmts0) / k, 3),
        "store_commits_per_start": round((commits1 - commits0) / k, 3),
        **traced,
    }
