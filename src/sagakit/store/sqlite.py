"""SQLite specifics of the SQL store: WAL, one writer, ``INSERT … ON CONFLICT DO NOTHING``.

Checkpoints are written by one dedicated thread holding a plain (synchronous) connection:
a whole group commit — BEGIN, the updates, the history rows, COMMIT — is one hand-off
from the event loop instead of one per statement, and SQLAlchemy's parameter processing
runs off the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Insert, Row, Select, create_engine
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from .records import OutboxMessage
from .sql import SqlStore, attach_sqlite_setup
from .sql.core import Fault
from .sql.rows import _Write, plain_batch
from .sqlite_direct import DirectWrites
from .sqlite_outbox import DirectOutbox

_T = TypeVar("_T")

#: Threads that run reads, each on its own pysqlite connection (WAL: readers never wait
#: for the writer, nor for each other).
_READERS = 4


#: SQLite result codes (primary, the low byte) of a database busy with another writer
#: (SQLITE_BUSY 5, SQLITE_LOCKED 6) or an I/O error (SQLITE_IOERR 10): retry later.
_UNAVAILABLE_CODES = frozenset({5, 6, 10})


class SqliteStore(SqlStore):
    """The embedded default store: one file, many readers, one writer at a time."""

    def _fault(self, driver_error: BaseException | None) -> Fault | None:
        code = getattr(driver_error, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF in _UNAVAILABLE_CODES:
            return Fault.UNAVAILABLE
        return None

    locks_rows = False
    raw_driver_errors = (sqlite3.Error,)

    def __init__(self, engine: AsyncEngine, **kwargs: Any) -> None:
        super().__init__(engine, **kwargs)
        database = engine.url.database
        self._threaded = bool(database) and database != ":memory:"
        self._thread: ThreadPoolExecutor | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._sync_conn: Connection | None = None
        self._sync_engine = None
        self._direct: DirectWrites | None = None
        self._outbox_statements: DirectOutbox | None = None
        if self._threaded:
            # the writer's connection, and one per reader thread
            self._sync_engine = create_engine(
                engine.url.set(drivername="sqlite+pysqlite"), pool_size=_READERS + 1
            )
            attach_sqlite_setup(self._sync_engine)

    def _configure_engine(self) -> None:
        attach_sqlite_setup(self.engine)

    def _insert_ignore(self) -> Insert:
        return sqlite_insert(self.tables.instances).on_conflict_do_nothing(index_elements=["id"])

    def _lock_candidates(self, query: Select[Any]) -> Select[Any]:
        # BEGIN IMMEDIATE already holds the database's single write lock.
        return query

    def _claim(
        self, conn: Connection, owner: str, now: datetime, until: datetime, limit: int
    ) -> list[OutboxMessage]:
        if not self._threaded:
            return super()._claim(conn, owner, now, until, limit)
        return self._outbox_direct().claim(_raw(conn), owner, now, until, limit)

    def _published(self, conn: Connection, ids: list[int], at: datetime) -> None:
        if not self._threaded:
            return super()._published(conn, ids, at)
        self._outbox_direct().mark_published(_raw(conn), ids, at)

    def _outbox_direct(self) -> DirectOutbox:
        if self._outbox_statements is None:
            self._outbox_statements = DirectOutbox(self.tables, self.engine.dialect, self._free)
        return self._outbox_statements

    async def _write_direct(self, batch: list[_Write]) -> list[bool] | None:
        if not self._threaded or not plain_batch(batch):
            return None
        if self._direct is None:
            self._direct = DirectWrites(
                self.tables, self.engine.dialect, self._insert_ignore_statement
            )
        before = self._direct.statements
        # errors: _writer_failed translates them (raw_driver_errors)
        outcomes = await self._in_writer(self._direct.write, batch)
        self.statements += self._direct.statements - before
        self.commits += 1
        return outcomes

    async def _fetch(self, query: Any) -> list[Row[Any]]:
        # One hand-off to a reader thread, which runs the whole read through the pysqlite
        # engine; through aiosqlite a read was eight (cursor, BEGIN, SELECT, fetch, close,
        # rollback), each a round trip between the event loop and aiosqlite's thread.
        if not self._threaded:
            return await super()._fetch(query)
        if self._readers is None:
            self._readers = ThreadPoolExecutor(_READERS, thread_name_prefix="sagakit-sqlite-reader")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._read_in_thread, query)

    def _read_in_thread(self, query: Any) -> list[Row[Any]]:
        assert self._sync_engine is not None
        with self._sync_engine.connect() as conn:
            reading = conn.execution_options(sagakit_read_only=True)
            return list(reading.execute(query).all())

    async def _in_writer(self, fn: Callable[..., _T], *args: Any) -> _T:
        if not self._threaded:
            return await super()._in_writer(fn, *args)
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="sagakit-sqlite-writer")
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._call, fn, args)

    def _call(self, fn: Callable[..., _T], args: tuple[Any, ...]) -> _T:
        if self._sync_conn is None:
            assert self._sync_engine is not None
            self._sync_conn = self._sync_engine.connect()
        return fn(self._sync_conn, *args)

    def _drop_sync_connection(self) -> None:
        if self._sync_conn is not None:
            with contextlib.suppress(Exception):
                self._sync_conn.close()
            self._sync_conn = None

    async def _reset_writer(self) -> None:
        await super()._reset_writer()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(
                self._thread, self._drop_sync_connection
            )

    async def close(self) -> None:
        await super().close()
        if self._readers is not None:
            self._readers.shutdown(wait=True)
            self._readers = None
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(
                self._thread, self._drop_sync_connection
            )
            self._thread.shutdown(wait=True)
            self._thread = None
        if self._sync_engine is not None:
            self._sync_engine.dispose()


def _raw(conn: Connection) -> sqlite3.Connection:
    """The ``sqlite3`` connection under the writer thread's SQLAlchemy connection."""
    raw = conn.connection.driver_connection
    assert isinstance(raw, sqlite3.Connection)
    return raw
