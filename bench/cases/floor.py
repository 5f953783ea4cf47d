"""The floor: single-row UPDATE commits per second straight through the driver.

SQLite: aiosqlite on a WAL file with ``synchronous=FULL`` (sagakit's own settings), so
every commit is one fsync of the WAL. Three shapes: sequential on one connection; 32
tasks on 32 connections (``BEGIN IMMEDIATE``, ``busy_timeout``), each task updating its
own row; 32 tasks sharing one connection, each UPDATE+COMMIT pair under a lock (a shared
connection cannot interleave transactions). Each commit is the driver's usual pair of
calls: ``execute(UPDATE)`` (sqlite3 begins the transaction implicitly) and ``commit()``.

PostgreSQL: asyncpg, the driver sagakit's store uses, on the server's own settings
(``synchronous_commit=on``: every commit waits for its WAL flush). A commit is one
``execute(UPDATE)`` outside any transaction block: the server wraps it in its own
transaction, so it is one round trip and one WAL flush, the least a durable write can
cost. Shapes: sequential on one connection; the same inside an explicit transaction
(``BEGIN``; ``UPDATE``; ``COMMIT``: three round trips, what a driver does for a
multi-statement transaction; for reference, not used in ratios); 32 tasks on a pool of
32 connections, each task updating its own row.

MariaDB: aiomysql, the store's driver, on the server's own settings
(``innodb_flush_log_at_trx_commit=1``: every commit waits for its redo log flush), in
autocommit mode: one ``UPDATE`` is one round trip and one transaction. Shapes as on
PostgreSQL: sequential, the same inside ``BEGIN``/``COMMIT``, 32 tasks on a pool of 32.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosqlite

from bench.backends import Database
from bench.context import CaseContext
from bench.stats import latency_ms, rate

_TASKS = 32
_UPDATE_PG = 'UPDATE "{schema}".counters SET value = value + 1 WHERE id = $1'
_UPDATE_MYSQL = "UPDATE counters SET value = value + 1 WHERE id = %s"

#: A function that commits one single-row UPDATE of row ``row``.
Commit = Callable[[int], Awaitable[None]]


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


class RawConnection:
    """One driver connection to a fresh ``counters`` table; ``commit(row)`` as the floor does.

    ``explicit=True`` (PostgreSQL only) wraps each UPDATE in BEGIN/COMMIT.
    """

    def __init__(self, db: Database, *, explicit: bool = False) -> None:
        self.db = db
        self.explicit = explicit
        self._sqlite: aiosqlite.Connection | None = None
        self._pg: Any = None
        self._mysql: Any = None

    async def open(self) -> RawConnection:
        if self.db.path is not None:
            await create_counters(self.db.path)
            self._sqlite = await connect(self.db.path)
            return self
        if self.db.backend == "mariadb":
            self._mysql = await mysql_connect(self.db)
            await create_mysql_counters(self._mysql)
            return self
        import asyncpg

        self._pg = await asyncpg.connect(self.db.dsn)
        await create_pg_counters(self._pg, self.db)
        return self

    async def commit(self, row: int) -> None:
        if self._sqlite is not None:
            await update_once(self._sqlite, row)
        elif self._mysql is not None:
            await mysql_update(self._mysql, row, explicit=self.explicit)
        elif self.explicit:
            async with self._pg.transaction():
                await self._pg.execute(_UPDATE_PG.format(schema=self.db.schema), row)
        else:
            await self._pg.execute(_UPDATE_PG.format(schema=self.db.schema), row)

    async def close(self) -> None:
        if self._sqlite is not None:
            await self._sqlite.close()
        if self._pg is not None:
            await self._pg.close()
        if self._mysql is not None:
            self._mysql.close()


async def mysql_connect(db: Database) -> Any:
    """An autocommit aiomysql connection to the case's database."""
    import aiomysql
    from sqlalchemy.engine import make_url

    url = make_url(db.sagakit_url)
    return await aiomysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        db=url.database,
        autocommit=True,
    )


async def mysql_update(conn: Any, row: int, *, explicit: bool = False) -> None:
    """One single-row UPDATE, committed: alone (autocommit) or inside BEGIN/COMMIT."""
    async with conn.cursor() as cursor:
        if explicit:
            await cursor.execute("BEGIN")
        await cursor.execute(_UPDATE_MYSQL, (row,))
        if explicit:
            await cursor.execute("COMMIT")


async def create_mysql_counters(conn: Any) -> None:
    async with conn.cursor() as cursor:
        await cursor.execute("CREATE TABLE counters (id INTEGER PRIMARY KEY, value BIGINT)")
        await cursor.executemany(
            "INSERT INTO counters VALUES (%s, 0)", [(i,) for i in range(_TASKS)]
        )


async def create_pg_counters(conn: Any, db: Database) -> None:
    await conn.execute(
        f'CREATE TABLE "{db.schema}".counters (id INTEGER PRIMARY KEY, value BIGINT)'
    )
    await conn.execute(
        f'INSERT INTO "{db.schema}".counters SELECT g, 0 FROM generate_series(0, $1) g',
        _TASKS - 1,
    )


async def _timed(commit: Commit, n: int) -> tuple[float, list[float]]:
    for _ in range(20):
        await commit(0)
    latencies: list[float] = []
    t0 = time.perf_counter()
    for _ in range(n):
        began = time.perf_counter()
        await commit(0)
        latencies.append(time.perf_counter() - began)
    return time.perf_counter() - t0, latencies


async def floor_sequential(ctx: CaseContext) -> dict[str, Any]:
    """Commit ``commits`` single-row UPDATEs one after another on one connection.

    ``explicit`` (PostgreSQL): each inside BEGIN/COMMIT.
    """
    n = ctx.number("commits")
    explicit = bool(ctx.params.get("explicit", False))
    raw = await RawConnection(ctx.database("floor"), explicit=explicit).open()
    try:
        seconds, latencies = await _timed(raw.commit, n)
    finally:
        await raw.close()
    shape = "sequential, one connection"
    if explicit:
        shape += ", BEGIN; UPDATE; COMMIT (3 round trips)"
    return {
        "shape": shape,
        "commits": n,
        "seconds": round(seconds, 4),
        "commits_per_s": rate(n, seconds),
        "commit_latency_ms": latency_ms(latencies),
    }


async def floor_concurrent(ctx: CaseContext) -> dict[str, Any]:
    """Commit from 32 tasks.

    SQLite: on 32 connections (``shared=0``) or one shared connection. PostgreSQL: on an
    asyncpg pool of 32 connections, each commit acquiring one.
    """
    db = ctx.database("floor")
    if db.backend == "mariadb":
        return await _mysql_pool(ctx, db)
    if db.path is None:
        return await _pg_pool(ctx, db)
    await create_counters(db.path)
    n = ctx.number("commits")
    shared = bool(ctx.params.get("shared", False))
    conns = [await connect(db.path) for _ in range(1 if shared else _TASKS)]
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


async def _spread(commit: Commit, n: int) -> tuple[int, float]:
    """Commit from ``_TASKS`` tasks, each updating its own row; commits and seconds.

    One commit per task first (not timed), so every connection is warm.
    """
    per_task = max(n // _TASKS, 1)

    async def task(index: int) -> None:
        for _ in range(per_task):
            await commit(index)

    await asyncio.gather(*(commit(i) for i in range(_TASKS)))
    t0 = time.perf_counter()
    await asyncio.gather(*(task(i) for i in range(_TASKS)))
    return per_task * _TASKS, time.perf_counter() - t0


def _pool_result(how: str, total: int, seconds: float) -> dict[str, Any]:
    return {
        "shape": f"{_TASKS} tasks, {how}",
        "commits": total,
        "seconds": round(seconds, 4),
        "commits_per_s": rate(total, seconds),
    }


async def _pg_pool(ctx: CaseContext, db: Database) -> dict[str, Any]:
    import asyncpg

    pool = await asyncpg.create_pool(db.dsn, min_size=_TASKS, max_size=_TASKS)
    sql = _UPDATE_PG.format(schema=db.schema)
    try:
        async with pool.acquire() as conn:
            await create_pg_counters(conn, db)

        async def commit(row: int) -> None:
            await pool.execute(sql, row)

        total, seconds = await _spread(commit, ctx.number("commits"))
    finally:
        await pool.close()
    return _pool_result(f"asyncpg pool of {_TASKS} connections", total, seconds)


async def _mysql_pool(ctx: CaseContext, db: Database) -> dict[str, Any]:
    conns = [await mysql_connect(db) for _ in range(_TASKS)]
    try:
        await create_mysql_counters(conns[0])

        async def commit(row: int) -> None:
            await mysql_update(conns[row], row)

        total, seconds = await _spread(commit, ctx.number("commits"))
    finally:
        for conn in conns:
            conn.close()
    return _pool_result(f"{_TASKS} aiomysql connections", total, seconds)
