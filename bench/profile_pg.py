"""Where sagakit's step time goes on PostgreSQL: ``python -m bench.profile --backend postgresql``.

The same workload as the benchmark (N sagas of 5 no-op steps, K in flight; K = 1 is one
after another), on a fresh schema of the benchmark's PostgreSQL database, dropped
afterwards. Four views:

1. per step with ``synchronous_commit`` on (the server's setting) and off (set on
   sagakit's own connections only), and this process's CPU time per step: what waiting
   for the WAL flush costs, and what the client spends;
2. asyncpg calls per step that each cost one round trip to the server (BEGIN, COMMIT,
   each statement executed, each statement prepared);
3. hand-written checkpoints of the same shape straight on asyncpg, for scale: the raw
   single-row commit (the floor), ``BEGIN; UPDATE; INSERT; COMMIT`` (sagakit's round
   trips without SQLAlchemy), and one ``WITH … UPDATE … INSERT`` statement (a whole
   checkpoint in one round trip);
4. pyinstrument over the event-loop thread, summed by component (sagakit, SQLAlchemy,
   asyncpg, asyncio, waiting in ``select`` for the server), then the call tree.

A diagnostic, not a benchmark: its numbers are not compared with anything.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.util import await_

import sagakit as sk
from bench.backends import Database, PostgresBackend
from bench.drive import drive_async
from bench.workload import SAGA_NAME, STEPS, make_saga

#: asyncpg methods each of which is one round trip to the server.
_ROUND_TRIPS = (
    ("asyncpg.connection", "Connection", "execute"),
    ("asyncpg.connection", "Connection", "executemany"),
    ("asyncpg.connection", "Connection", "prepare"),
    ("asyncpg.prepared_stmt", "PreparedStatement", "fetch"),
)


def _synchronous_commit_off(rt: sk.Runtime) -> None:
    @event.listens_for(rt.store.engine.sync_engine, "connect")  # type: ignore[attr-defined]
    def _off(dbapi_connection: Any, _record: Any) -> None:
        await_(dbapi_connection._connection.execute("SET synchronous_commit TO off"))


class _Trips:
    """Count calls to asyncpg's round-trip methods while installed."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._saved: list[tuple[Any, str, Any]] = []

    def install(self) -> None:
        import importlib

        for module_name, class_name, method in _ROUND_TRIPS:
            cls = getattr(importlib.import_module(module_name), class_name)
            original = getattr(cls, method)
            self._saved.append((cls, method, original))
            setattr(cls, method, self._wrap(f"{class_name}.{method}", original))

    def _wrap(self, name: str, original: Callable[..., Awaitable[Any]]) -> Any:
        calls = self.calls

        async def counted(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return await original(*args, **kwargs)

        return counted

    def remove(self) -> None:
        for cls, method, original in reversed(self._saved):
            setattr(cls, method, original)
        self._saved.clear()


async def _run(
    db: Database,
    n: int,
    in_flight: int,
    *,
    sync_commit: bool = True,
    profiler: Any = None,
    trips: _Trips | None = None,
) -> dict[str, float]:
    """Run ``n`` sagas, ``in_flight`` at once; return wall and CPU seconds per step."""
    rt = sk.Runtime(db.sagakit_url, sagas=[make_saga()])
    if not sync_commit:
        _synchronous_commit_off(rt)

    async def one(i: int) -> None:
        await rt.run(SAGA_NAME, {"i": i})

    async with rt:
        await drive_async(one, 50, in_flight, first=-50)
        if profiler is not None:
            profiler.start()
        if trips is not None:
            trips.install()
        cpu0 = time.process_time()
        try:
            timing = await drive_async(one, n, in_flight)
        finally:
            if trips is not None:
                trips.remove()
        cpu = time.process_time() - cpu0
        if profiler is not None:
            profiler.stop()
    steps = n * STEPS
    return {"wall": timing.seconds / steps, "cpu": cpu / steps}


async def _by_hand(db: Database, n: int) -> dict[str, float]:
    """Seconds per commit of hand-written asyncpg checkpoints of growing size."""
    import asyncpg

    conn = await asyncpg.connect(db.dsn)
    s = f'"{db.schema}"'
    try:
        await conn.execute(
            f"CREATE TABLE {s}.rows (id TEXT PRIMARY KEY, version INT, data JSONB, "
            f"updated_at TIMESTAMPTZ);"
            f"CREATE TABLE {s}.events (saga_id TEXT, seq INT, type TEXT, output JSONB, "
            f"at TIMESTAMPTZ, PRIMARY KEY (saga_id, seq));"
            f"INSERT INTO {s}.rows VALUES ('a', 0, '{{}}', now())"
        )
        update = f"UPDATE {s}.rows SET version = $1, data = $2, updated_at = now() WHERE id = 'a'"
        insert = f"INSERT INTO {s}.events VALUES ('a', $1, 'step_completed', $2, now())"
        one_statement = (
            f"WITH u AS ({update} AND version = $1 - 1 RETURNING id) "
            f"INSERT INTO {s}.events SELECT id, $1, 'step_completed', $2, now() FROM u"
        )
        payload = json.dumps({"step1": "ok", "last": 1})
        version = 0

        async def raw() -> None:
            await conn.execute(f"UPDATE {s}.rows SET version = version + 1 WHERE id = 'a'")

        async def checkpoint_tx() -> None:
            nonlocal version
            version += 1
            async with conn.transaction():
                await conn.execute(update, version, payload)
                await conn.execute(insert, version, payload)

        async def checkpoint_one() -> None:
            nonlocal version
            version += 1
            await conn.execute(one_statement, version, payload)

        out: dict[str, float] = {}
        for name, fn in (
            ("raw single-row commit (the floor)", raw),
            ("BEGIN; UPDATE; INSERT; COMMIT", checkpoint_tx),
            ("one WITH ... UPDATE ... INSERT statement", checkpoint_one),
        ):
            for _ in range(50):
                await fn()
            t0 = time.perf_counter()
            for _ in range(n):
                await fn()
            out[name] = (time.perf_counter() - t0) / n
        return out
    finally:
        await conn.close()


def _components(profiler: Any) -> list[tuple[str, float]]:
    """Sum the profile's self time by component: sagakit, SQLAlchemy, asyncpg, waiting."""
    totals: Counter[str] = Counter()
    root = profiler.last_session.root_frame()
    stack = [root] if root is not None else []
    while stack:
        frame = stack.pop()
        stack.extend(frame.children)
        path = (frame.file_path or "").replace("\\", "/")
        if "selectors.py" in path or frame.function in ("epoll.poll", "poll", "select"):
            part = "waiting in select() for the server"
        elif "/sagakit/" in path:
            part = "sagakit"
        elif "/sqlalchemy/" in path:
            part = "SQLAlchemy"
        elif "/asyncpg/" in path:
            part = "asyncpg"
        elif "/asyncio/" in path:
            part = "asyncio event loop"
        elif "/bench/" in path:
            part = "bench harness"
        else:
            part = "other (stdlib, json, uuid, ...)"
        if not frame.is_synthetic:
            totals[part] += frame.total_self_time
    total = sum(totals.values()) or 1.0
    return [(part, seconds / total) for part, seconds in totals.most_common()]


async def profile_postgresql(n: int, in_flight: int = 1) -> str:
    from pyinstrument import Profiler

    backend = PostgresBackend()
    why_not = backend.unavailable()
    if why_not:
        raise SystemExit(f"PostgreSQL cannot run: {why_not}")
    prefix = f"skb_profile_{int(time.time())}"
    made: list[Database] = []

    def fresh(label: str) -> Database:
        db = backend.database(Path("."), f"{prefix}_{label}")
        made.append(db)
        return db

    try:
        on = await _run(fresh("on"), n, in_flight)
        off = await _run(fresh("off"), n, in_flight, sync_commit=False)
        trips = _Trips()
        await _run(fresh("trips"), min(n, 200), in_flight, trips=trips)
        by_hand = await _by_hand(fresh("hand"), n * STEPS)
        profiler = Profiler(async_mode="disabled", interval=0.0005)
        profiled = await _run(fresh("profiled"), n, in_flight, profiler=profiler)
    finally:
        backend.sweep(prefix)
    ms = 1000
    steps_counted = min(n, 200) * STEPS
    floor = by_hand["raw single-row commit (the floor)"]
    lines = [
        f"sagakit on {backend.describe(Path('.'))['engine']}, {n} sagas x {STEPS} steps, "
        f"{in_flight} in flight",
        f"  per step, synchronous_commit=on:   {on['wall'] * ms:.3f} ms "
        f"(this process's CPU: {on['cpu'] * ms:.3f} ms)",
        f"  per step, synchronous_commit=off:  {off['wall'] * ms:.3f} ms "
        f"(CPU: {off['cpu'] * ms:.3f} ms)",
        f"  step / raw commit:                 {on['wall'] / floor:.2f}x",
        "  asyncpg round trips per step (saga start included):",
        *(
            f"    {name:<28} {count / steps_counted:.2f}"
            for name, count in sorted(trips.calls.items())
        ),
        f"    {'total':<28} {sum(trips.calls.values()) / steps_counted:.2f}",
        "  hand-written on asyncpg, per commit (synchronous_commit=on):",
        *(f"    {name:<42} {seconds * ms:.3f} ms" for name, seconds in by_hand.items()),
        f"  profiled run: {profiled['wall'] * ms:.3f} ms per step with the profiler; "
        "event-loop thread time by component:",
        *(
            f"    {part:<36} {share:6.1%}  {share * profiled['wall'] * ms:.3f} ms/step"
            for part, share in _components(profiler)
        ),
        "",
        profiler.output_text(unicode=False, color=False, show_all=False),
    ]
    return "\n".join(lines)
