"""State machines: events per second into many instances, and into one hot instance.

``machines.events`` creates ``instances`` instances with one initial event each (not
timed), then times one more event into each, ``in_flight`` at once, and reads the store's
own statement and commit counters per event. ``machines.hot`` sends ``events`` events to
one instance from ``tasks`` tasks at once: what a contended instance costs.
"""

from __future__ import annotations

from typing import Any

import sagakit as sk
from bench.cases.sagakit_run import store_counters
from bench.context import CaseContext
from bench.drive import drive_async
from bench.sqltrace import METHODS, SqlTrace, per_unit
from bench.stats import latency_ms, rate


def _counter() -> sk.StateMachine:
    counter = sk.StateMachine("bench_counter", correlate_by="key")
    (counting,) = counter.states("Counting")

    @counter.initially("Add")
    def first(instance: sk.Instance, event: dict[str, Any]) -> sk.State:
        instance.data["n"] = 1
        return counting

    @counter.during(counting, "Add")
    def add(instance: sk.Instance, event: dict[str, Any]) -> None:
        instance.data["n"] += 1

    return counter


async def _send(rt: sk.Runtime, key: str) -> None:
    result = await rt.send("Add", {"key": key})
    if not result.applied:
        raise RuntimeError(f"event for {key} was {result.outcome}")


async def machine_events(ctx: CaseContext) -> dict[str, Any]:
    """One event into each of ``instances`` existing instances, ``in_flight`` at once."""
    n, in_flight = ctx.number("instances"), ctx.number("in_flight")
    db = ctx.database("machines")
    trace = SqlTrace()
    trace.attach_everywhere(db.backend)
    async with sk.Runtime(db.sagakit_url, sagas=[_counter()], workers=0) as rt:
        await drive_async(lambda i: _send(rt, f"k{i}"), n, 64)  # create them, untimed
        stmts0, commits0 = store_counters(rt)
        traced0 = trace.snapshot()
        timing = await drive_async(lambda i: _send(rt, f"k{i}"), n, in_flight)
        stmts1, commits1 = store_counters(rt)
        traced1 = trace.snapshot()
    return {
        "instances": n,
        "in_flight": in_flight,
        "seconds": round(timing.seconds, 4),
        "events_per_s": rate(n, timing.seconds),
        "event_latency_ms": latency_ms(timing.latencies),
        "store_counters": {
            "statements_per_event": round((stmts1 - stmts0) / n, 3),
            "commits_per_event": round((commits1 - commits0) / n, 3),
        },
        "sql_trace": per_unit(traced0, traced1, n, "event"),
        "sql_trace_method": METHODS[db.backend],
    }


async def machine_hot(ctx: CaseContext) -> dict[str, Any]:
    """``events`` events into one instance from ``tasks`` tasks at once."""
    n, tasks = ctx.number("events"), ctx.number("tasks")
    db = ctx.database("machines_hot")
    async with sk.Runtime(db.sagakit_url, sagas=[_counter()], workers=0) as rt:
        await _send(rt, "hot")
        timing = await drive_async(lambda i: _send(rt, "hot"), n, tasks)
        final = await rt.get("bench_counter:hot")
    if final.data["n"] != n + 1:
        raise RuntimeError(f"hot instance counted {final.data['n']}, expected {n + 1}")
    return {
        "events": n,
        "tasks": tasks,
        "seconds": round(timing.seconds, 4),
        "events_per_s": rate(n, timing.seconds),
        "event_latency_ms": latency_ms(timing.latencies),
    }
