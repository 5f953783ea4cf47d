"""DBOS Transact 3.x: the same 5-step workflow (each step a ``@DBOS.step``).

Four shapes: async or sync workflow functions, sequential or with K in flight (asyncio
tasks for async, a thread pool for sync).

SQLite: ``journal`` picks SQLite's journal: ``default`` is what DBOS ships (its engine
does not set one: rollback journal), ``wal`` sets WAL on the file before launch so DBOS
gets the same durability settings as sagakit (WAL, ``synchronous=FULL``, SQLite's
default). Statements are counted with sqlite3's trace callback on every connection
DBOS's pool opens; DBOS's background pollers are included.

PostgreSQL: DBOS's system database is the case's database (``system_database_url``),
its tables in the case's schema (``dbos_system_schema``), dropped afterwards; DBOS's
own engine (psycopg 3, its default pool of 20). Statements are counted with SQLAlchemy's
events on every engine, which DBOS's system database goes through (its LISTEN
connection, which only listens, is not counted).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

from bench.context import CaseContext
from bench.drive import Timing, drive_async, drive_threads
from bench.sqltrace import METHODS, SqlTrace, per_unit
from bench.stats import latency_ms, rate
from bench.workload import STEPS, step_output


def _define(dbos: Any, asynchronous: bool) -> Callable[..., Any]:
    """Register the 5-step workflow with DBOS and return it."""
    steps: list[Callable[..., Any]] = []
    for index in range(STEPS):
        if asynchronous:

            async def astep(i: int, index: int = index) -> dict[str, Any]:
                return step_output(index)

            steps.append(dbos.step(name=f"astep{index}")(astep))
        else:

            def sstep(i: int, index: int = index) -> dict[str, Any]:
                return step_output(index)

            steps.append(dbos.step(name=f"sstep{index}")(sstep))

    if asynchronous:

        async def aworkflow(i: int) -> dict[str, Any]:
            context: dict[str, Any] = {"i": i}
            for step in steps:
                context.update(await step(i))
            return context

        return dbos.workflow(name="bench_noop5_async")(aworkflow)  # type: ignore[no-any-return]

    def sworkflow(i: int) -> dict[str, Any]:
        context: dict[str, Any] = {"i": i}
        for step in steps:
            context.update(step(i))
        return context

    return dbos.workflow(name="bench_noop5_sync")(sworkflow)  # type: ignore[no-any-return]


def dbos_run(ctx: CaseContext) -> dict[str, Any]:
    """Run ``sagas`` workflows; params: ``mode`` (async|sync), ``in_flight``, ``journal``.

    Sync workflows are called with no event loop running, as a sync DBOS app would.
    """
    from dbos import DBOS  # imported here: only this case's process pays for it

    n, in_flight, warmup = ctx.number("sagas"), ctx.number("in_flight"), ctx.number("warmup")
    asynchronous = ctx.text("mode") == "async"
    journal = ctx.params.get("journal")
    db = ctx.database("dbos")
    if journal == "wal":
        ctx.backend.prepare_wal(db)
    trace = SqlTrace()
    trace.attach_everywhere(db.backend)
    logging.getLogger("dbos").setLevel(logging.WARNING)
    config: dict[str, Any] = {
        "name": "sagakit-bench",
        "system_database_url": db.sqlalchemy_sync_url,
        "log_level": "WARNING",
    }
    if db.schema is not None:
        config["dbos_system_schema"] = db.schema
    DBOS(config=config)  # type: ignore[arg-type]
    workflow = _define(DBOS, asynchronous)
    try:
        if asynchronous:
            timing, traced = asyncio.run(
                _measure_async(DBOS, workflow, n, in_flight, warmup, trace)
            )
        else:
            DBOS.launch()
            timing, traced = _measure_sync(workflow, n, in_flight, warmup, trace)
    finally:
        DBOS.destroy(destroy_registry=True)
    return {
        "dbos_version": version("dbos"),
        "mode": "async" if asynchronous else "sync",
        "journal": journal,
        "in_flight": in_flight,
        "concurrency": "asyncio tasks" if asynchronous else "threads",
        "sagas": n,
        "steps": n * STEPS,
        "seconds": round(timing.seconds, 4),
        "sagas_per_s": rate(n, timing.seconds),
        "steps_per_s": rate(n * STEPS, timing.seconds),
        "saga_latency_ms": latency_ms(timing.latencies),
        "sql_trace": per_unit(*traced, n * STEPS, "step"),
        "sql_trace_per_workflow": per_unit(*traced, n, "workflow"),
        "sql_trace_method": METHODS[db.backend],
    }


Snapshots = tuple[Counter[str], Counter[str]]


async def _measure_async(
    dbos: Any, workflow: Callable[..., Any], n: int, in_flight: int, warmup: int, trace: SqlTrace
) -> tuple[Timing, Snapshots]:
    dbos.launch()

    async def run_one(i: int) -> None:
        await workflow(i)

    await drive_async(run_one, warmup, in_flight, first=-warmup)
    before = trace.snapshot()
    timing = await drive_async(run_one, n, in_flight)
    return timing, (before, trace.snapshot())


def _measure_sync(
    workflow: Callable[..., Any], n: int, in_flight: int, warmup: int, trace: SqlTrace
) -> tuple[Timing, Snapshots]:
    def run_one(i: int) -> None:
        workflow(i)

    drive_threads(run_one, warmup, in_flight, first=-warmup)
    before = trace.snapshot()
    timing = drive_threads(run_one, n, in_flight)
    return timing, (before, trace.snapshot())
