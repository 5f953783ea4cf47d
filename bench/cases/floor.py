"""The floor: single-row UPDATE commits per second straight through the driver.

SQLite: aiosqlite on a WAL file with ``synchronous=FULL`` (sagakit's own settings), so
every commit is one fsync of the WAL. Three shapes: sequential on one connection; 32
tasks on 32 connections (``BEGIN IMMEDIATE``, ``busy_timeout``), each task updating its
own row; 32 tasks sharing one connection, each UPDATE+COMMIT pair under a lock (a shared
connection cannot interleave transactions). Each commit is the driver's usual pair of
calls: ``execute(UPDATE)`` (sqlite3 begins the transaction implicitly) and ``commit()``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiosqlite

from bench.context import CaseContext
from bench.stats import latency_ms, rate

_TASKS = 32


async def connect(path: Path) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path)
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("PRAGMA synchronous=FULL")
    await conn.execute("PRAGMA busy_timeout=30000")
    return conn


async def update_once(conn: aiosqlite.Connection, row: int) -> None:
    # sqlite3 opens the transaction implicitly at the UPDATE (a write, so it takes the
    # write lock at once); commit() ends it: two driver calls, one fsync.
    await conn.execute("UPDATE counters SET value = value + 1 WHERE id = ?", (row,))
    await conn.commit()


async def create_counters(path: Path) -> None:
    conn = await connect(path)
    try:
        await conn.execute("CREATE TABLE counters (id INTEGER PRIMARY KEY, value INTEGER)")
        await conn.executemany("INSERT INTO counters VALUES (?, 0)", [(i,) for i in range(_TASKS)])
        await conn.commit()
    finally:
        await conn.close()


def _path(ctx: CaseContext) -> Path:
    db = ctx.database("floor")
    if db.path is None:
        raise SystemExit(f"the floor case has no driver for backend {db.backend!r} yet")
    return db.path


async def floor_sequential(ctx: CaseContext) -> dict[str, Any]:
    """Commit ``commits`` single-row UPDATEs one after another on one connection."""
    path = _path(ctx)
    await create_counters(path)
    n = ctx.number("commits")
    conn = await connect(path)
    try:
        for _ in range(20):
            await update_once(conn, 0)
        latencies: list[float] = []
        t0 = time.perf_counter()
        for _ in range(n):
            began = time.perf_counter()
            await update_once(conn, 0)
            latencies.append(time.perf_counter() - began)
        seconds = time.perf_counter() - t0
    finally:
        await conn.close()
    return {
        "shape": "sequential, one connection",
        "commits": n,
        "seconds": round(seconds, 4),
        "commits_per_s": rate(n, seconds),
        "commit_latency_ms": latency_ms(latencies),
    }


async def floor_concurrent(ctx: CaseContext) -> dict[str, Any]:
    """Commit from 32 tasks, on 32 connections (``shared=0``) or one shared connection."""
    path = _path(ctx)
    await create_counters(path)
    n = ctx.number("commits")
    shared = bool(ctx.params.get("shared", False))
    conns = [await connect(path) for _ in range(1 if shared else _TASKS)]
    lock = asyncio.Lock()
    per_task = max(n // _TASKS, 1)

    async def task(index: int) -> None:
        conn = conns[0 if shared else index]
        for _ in range(per_task):
            if shared:
                async with lock:
                    await update_once(conn, index)
            else:
                await update_once(conn, index)

    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(task(i) for i in range(_TASKS)))
        seconds = time.perf_counter() - t0
    finally:
        for conn in conns:
            await conn.close()
    total = per_task * _TASKS
    how = "one shared connection, UPDATE+COMMIT under a lock" if shared else "32 connections"
    return {
        "shape": f"{_TASKS} tasks, {how}",
        "commits": total,
        "seconds": round(seconds, 4),
        "commits_per_s": rate(total, seconds),
    }
