"""Profile sagakit's sequential hot path: ``python -m bench.profile [--sagas N] [--backend B]``.

``--backend postgresql`` (with ``--in-flight K``) profiles the PostgreSQL store instead:
see ``bench.profile_pg``. On SQLite, four views of the same workload (N sagas of 5 no-op
steps, one after another, on a fresh SQLite file), each in this process:

1. pyinstrument over the event-loop thread (every task, the store's flusher included),
   on the run with ``synchronous=OFF`` so the disk does not hide the rest: where the
   loop spends its time, and how much of it it sits in ``select`` waiting for the
   driver thread;
2. fsync versus the rest: the run and a raw commit loop with ``synchronous=FULL`` and
   then ``OFF`` (a listener added after sagakit's own turns it off), so per-step time
   splits into "waiting for the disk" and "everything else";
3. driver round trips: how many calls each step sends to aiosqlite's thread;
4. WAL pages written per commit (auto-checkpoint off): what each fsync has to flush.

The report goes to stdout and, with ``--out``, to a file. This is a diagnostic, not a
benchmark: its numbers are not compared with anything.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/profile.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiosqlite
from sqlalchemy import event

import sagakit as sk
from bench.workload import SAGA_NAME, STEPS, make_saga


def _synchronous_off(rt: sk.Runtime) -> None:
    # On every pool of the store's engines (it may write through a pysqlite engine of its
    # own beside the aiosqlite one), after sagakit's own setup has turned it FULL.
    store: Any = rt.store
    engines = [store.engine.sync_engine, getattr(store, "_sync_engine", None)]
    for engine in (e for e in engines if e is not None):

        @event.listens_for(engine, "connect")
        def _off(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.close()


async def _run_sagas(path: Path, n: int, *, fsync: bool, profiler: Any = None) -> float:
    """Run ``n`` sagas sequentially; return seconds per step."""
    rt = sk.Runtime(f"sqlite:///{path}", sagas=[make_saga()])
    if not fsync:
        _synchronous_off(rt)
    async with rt:
        for i in range(20):
            await rt.run(SAGA_NAME, {"i": -i})
        if profiler is not None:
            profiler.start()
        t0 = time.perf_counter()
        for i in range(n):
            await rt.run(SAGA_NAME, {"i": i})
        seconds = time.perf_counter() - t0
        if profiler is not None:
            profiler.stop()
    return seconds / (n * STEPS)


async def _raw_commit(path: Path, n: int, *, fsync: bool) -> float:
    """Return seconds per single-row UPDATE commit on aiosqlite."""
    async with aiosqlite.connect(path) as conn:
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute(f"PRAGMA synchronous={'FULL' if fsync else 'OFF'}")
        await conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v INTEGER)")
        await conn.execute("INSERT OR IGNORE INTO t VALUES (1, 0)")
        await conn.commit()
        t0 = time.perf_counter()
        for _ in range(n):
            await conn.execute("UPDATE t SET v = v + 1 WHERE id = 1")
            await conn.commit()
        return (time.perf_counter() - t0) / n


async def _round_trips(path: Path, n: int) -> float:
    """Count calls sent to aiosqlite's worker thread per step."""
    calls = 0
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return await original(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    rt = sk.Runtime(f"sqlite:///{path}", sagas=[make_saga()])
    async with rt:
        await rt.run(SAGA_NAME, {"i": -1})
        aiosqlite.Connection._execute = counted  # type: ignore[method-assign]
        try:
            for i in range(n):
                await rt.run(SAGA_NAME, {"i": i})
        finally:
            aiosqlite.Connection._execute = original  # type: ignore[method-assign]
    return calls / (n * STEPS)


def _wal_frames(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    page = 4096  # SQLite's default page size; a WAL frame is a 24-byte header plus a page
    return max(wal.stat().st_size - 32, 0) // (page + 24) if wal.exists() else 0


async def _wal_pages_per_commit(path: Path, n: int) -> tuple[float, float]:
    """Return WAL frames per commit for sagakit and for the raw single-row commit."""
    rt = sk.Runtime(f"sqlite:///{path}", sagas=[make_saga()])

    @event.listens_for(rt.store.engine.sync_engine, "connect")  # type: ignore[attr-defined]
    def _no_checkpoint(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    async with rt:
        await rt.run(SAGA_NAME, {"i": -1})
        frames0, commits0 = _wal_frames(path), rt.store.commits  # type: ignore[attr-defined]
        for i in range(n):
            await rt.run(SAGA_NAME, {"i": i})
        frames, commits = _wal_frames(path) - frames0, rt.store.commits - commits0  # type: ignore[attr-defined]
    raw = path.with_name("raw-wal.db")
    async with aiosqlite.connect(raw) as conn:
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA wal_autocheckpoint=0")
        await conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
        await conn.execute("INSERT INTO t VALUES (1, 0)")
        await conn.commit()
        raw0 = _wal_frames(raw)
        for _ in range(n * STEPS):
            await conn.execute("UPDATE t SET v = v + 1 WHERE id = 1")
            await conn.commit()
        raw_frames = _wal_frames(raw) - raw0
    return frames / max(commits, 1), raw_frames / (n * STEPS)


async def profile(n: int) -> str:
    from pyinstrument import Profiler

    with tempfile.TemporaryDirectory(prefix="sagakit-profile-") as tmp:
        d = Path(tmp)
        profiler = Profiler(async_mode="disabled", interval=0.0005)
        profiled = await _run_sagas(d / "profiled.db", n, fsync=False, profiler=profiler)
        step_full = await _run_sagas(d / "full.db", n, fsync=True)
        step_off = await _run_sagas(d / "off.db", n, fsync=False)
        commit_full = await _raw_commit(d / "raw-full.db", n * STEPS, fsync=True)
        commit_off = await _raw_commit(d / "raw-off.db", n * STEPS, fsync=False)
        trips = await _round_trips(d / "trips.db", min(n, 200))
        wal_step, wal_raw = await _wal_pages_per_commit(d / "wal.db", min(n, 200))
    ms = 1000
    lines = [
        f"sequential sagakit, {n} sagas x {STEPS} steps, SQLite WAL",
        f"  per step, synchronous=FULL:       {step_full * ms:.3f} ms",
        f"  per step, synchronous=OFF:        {step_off * ms:.3f} ms  (no fsync: CPU + thread hops)",
        f"  raw commit, synchronous=FULL:     {commit_full * ms:.3f} ms",
        f"  raw commit, synchronous=OFF:      {commit_off * ms:.3f} ms",
        f"  step / raw commit (FULL):         {step_full / commit_full:.2f}x",
        f"  non-fsync cost per step:          {(step_full - (commit_full - commit_off)) * ms:.3f} ms",
        f"  aiosqlite thread calls per step:  {trips:.2f}",
        f"  WAL pages per sagakit commit:     {wal_step:.2f}  (raw commit: {wal_raw:.2f})",
        f"  (profiled run, synchronous=OFF: {profiled * ms:.3f} ms per step with the profiler)",
        "",
        profiler.output_text(unicode=False, color=False, show_all=False),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    p.add_argument("--sagas", type=int, default=500)
    p.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--in-flight", type=int, default=1, help="PostgreSQL: sagas at once")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    if args.backend == "postgresql":
        from bench.profile_pg import profile_postgresql

        report = asyncio.run(profile_postgresql(args.sagas, args.in_flight))
    else:
        report = asyncio.run(profile(args.sagas))
    print(report)
    if args.out:
        args.out.write_text(report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
