"""The hand-written baseline, as the seeds build it: an ORM ``saga_state`` row per saga.

Per saga: INSERT the row and commit; per step: load the row through the session, run the
step, update the row (context merged, step index, status), commit. No history table, no
leases, no version check: it does strictly less than sagakit per step.

SQLite: the same settings as sagakit (WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE``,
``busy_timeout``); ``mode=async`` uses ``AsyncSession`` on aiosqlite, ``mode=sync``
``Session`` on pysqlite with no event loop. PostgreSQL: the server's settings, the
table in the case's schema (``schema_translate_map``); ``mode=async`` on asyncpg (the
driver sagakit uses), ``mode=sync`` on psycopg 3.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, String, create_engine, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from bench.backends import Database
from bench.context import CaseContext
from bench.drive import Timing, drive_async, drive_threads
from bench.sqltrace import METHODS, SqlTrace, per_unit
from bench.stats import latency_ms, rate
from bench.workload import STEPS, step_output


class Base(DeclarativeBase):
    pass


class SagaState(Base):
    __tablename__ = "saga_state"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    saga_type: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    step_index: Mapped[int]
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    # timezone-aware: asyncpg refuses an aware datetime for TIMESTAMP WITHOUT TIME ZONE
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _sqlite_setup(sync_engine: Engine) -> None:
    @event.listens_for(sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


async def _step_async(index: int, context: dict[str, Any]) -> dict[str, Any]:
    return step_output(index)


def _step_sync(index: int, context: dict[str, Any]) -> dict[str, Any]:
    return step_output(index)


def _new_row(i: int) -> SagaState:
    now = datetime.now(UTC)
    return SagaState(
        id=uuid.uuid4().hex,
        saga_type="bench_noop5",
        status="RUNNING",
        step_index=0,
        data={"i": i},
        created_at=now,
        updated_at=now,
    )


def _advance(row: SagaState, output: dict[str, Any]) -> None:
    row.data = {**row.data, **output}
    row.step_index += 1
    row.status = "COMPLETED" if row.step_index == STEPS else "RUNNING"
    row.updated_at = datetime.now(UTC)


async def _run_async(engine: AsyncEngine, i: int) -> None:
    async with AsyncSession(engine) as session:
        row = _new_row(i)
        saga_id = row.id  # read before commit expires the row's attributes
        session.add(row)
        await session.commit()
        for index in range(STEPS):
            loaded = await session.get(SagaState, saga_id, populate_existing=True)
            assert loaded is not None
            output = await _step_async(index, loaded.data)
            _advance(loaded, output)
            await session.commit()


def _run_sync(engine: Engine, i: int) -> None:
    with Session(engine) as session:
        row = _new_row(i)
        saga_id = row.id  # read before commit expires the row's attributes
        session.add(row)
        session.commit()
        for index in range(STEPS):
            loaded = session.get(SagaState, saga_id, populate_existing=True)
            assert loaded is not None
            output = _step_sync(index, loaded.data)
            _advance(loaded, output)
            session.commit()


def baseline_run(ctx: CaseContext) -> dict[str, Any]:
    """Run ``sagas`` hand-written sagas; params: ``mode`` (async|sync), ``in_flight``."""
    n, in_flight, warmup = ctx.number("sagas"), ctx.number("in_flight"), ctx.number("warmup")
    mode = ctx.text("mode")
    db = ctx.database("baseline")
    trace = SqlTrace()
    if mode == "async":
        timing, traced = asyncio.run(_measure_async(db, n, in_flight, warmup, trace))
    else:
        timing, traced = _measure_sync(db, n, in_flight, warmup, trace)
    return {
        "mode": mode,
        "in_flight": in_flight,
        "concurrency": "asyncio tasks" if mode == "async" else "threads",
        "sagas": n,
        "steps": n * STEPS,
        "seconds": round(timing.seconds, 4),
        "sagas_per_s": rate(n, timing.seconds),
        "steps_per_s": rate(n * STEPS, timing.seconds),
        "saga_latency_ms": latency_ms(timing.latencies),
        "sql_trace": per_unit(*traced, n * STEPS, "step"),
        "sql_trace_method": METHODS[db.backend],
    }


def _options(db: Database) -> dict[str, Any]:
    """Engine options: the pool, and the case's schema for every table (PostgreSQL)."""
    if db.schema is None:
        return {}
    return {"execution_options": {"schema_translate_map": {None: db.schema}}}


async def _measure_async(
    db: Database, n: int, in_flight: int, warmup: int, trace: SqlTrace
) -> tuple[Timing, tuple[Any, Any]]:
    engine = create_async_engine(
        db.sqlalchemy_async_url, pool_size=max(in_flight, 5), **_options(db)
    )
    if db.path is not None:
        _sqlite_setup(engine.sync_engine)
    trace.attach_everywhere(db.backend)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)

        async def run_one(i: int) -> None:
            await _run_async(engine, i)

        await drive_async(run_one, warmup, in_flight, first=-warmup)
        before = trace.snapshot()
        timing = await drive_async(run_one, n, in_flight)
        return timing, (before, trace.snapshot())
    finally:
        await engine.dispose()


def _measure_sync(
    db: Database, n: int, in_flight: int, warmup: int, trace: SqlTrace
) -> tuple[Timing, tuple[Any, Any]]:
    engine = create_engine(db.sqlalchemy_sync_url, pool_size=max(in_flight, 5), **_options(db))
    if db.path is not None:
        _sqlite_setup(engine)
    trace.attach_everywhere(db.backend)
    try:
        with engine.begin() as conn:
            Base.metadata.create_all(conn)

        def run_one(i: int) -> None:
            _run_sync(engine, i)

        drive_threads(run_one, warmup, in_flight, first=-warmup)
        before = trace.snapshot()
        timing = drive_threads(run_one, n, in_flight)
        return timing, (before, trace.snapshot())
    finally:
        engine.dispose()
