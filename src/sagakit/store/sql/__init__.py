"""The SQL store: SQLAlchemy 2 Core (async) on SQLite, PostgreSQL and MariaDB.

One class made of parts with one reason to change each: ``writer`` (group commit),
``claims`` (leases), ``reads``, ``retention``, ``outbox`` (relay claims and the inbox), on
the shared ``core``; dialects
(``sqlite.py``, ``postgres.py``, ``mysql.py``) override its small hooks.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from .. import migrate as migrations
from .claims import Claims
from .core import _DRIVER_ERRORS, SqlCore
from .outbox import SqlOutbox
from .reads import Reads
from .retention import Retention
from .rows import _Write, checked_record, event_params, record_from_row, record_params
from .writer import GroupCommit


class SqlStore(GroupCommit, Claims, Reads, Retention, SqlOutbox):
    """A ``SagaStore`` on any SQLAlchemy async engine; dialect quirks are small overrides."""

    async def open(self, *, migrate: bool = True) -> None:
        try:
            if migrate:
                async with self.engine.begin() as conn:
                    await self._prepare_schema(conn)
                    try:
                        await conn.run_sync(migrations.upgrade, self.tables)
                    finally:
                        await self._after_schema(conn)
            self._writer = await self.engine.connect()
        except _DRIVER_ERRORS as e:
            raise self._translate(e, "opening the store") from e
        self._flusher = asyncio.create_task(self._flush_forever(), name="sagakit-group-commit")

    async def close(self) -> None:
        if self._flusher is not None:
            # Drain: the flusher commits every queued checkpoint (and answers its waiter),
            # including a batch it is writing now, then returns. Cancelling it would leave
            # that batch's waiters hanging forever.
            self._closing = True
            self._wakeup.set()
            await self._flusher
            self._flusher = None
            self._closing = False
        if self._writer is not None:
            await self._writer.close()
            self._writer = None
        await self.engine.dispose()

    def pool_numbers(self) -> dict[str, int] | None:
        pool = self.engine.pool
        try:
            return {
                "size": int(pool.size()),  # type: ignore[attr-defined]
                "checked_out": int(pool.checkedout()),  # type: ignore[attr-defined]
                "overflow": max(int(pool.overflow()), 0),  # type: ignore[attr-defined]
            }
        except AttributeError:  # pools without a fixed size keep no such numbers
            return None

    @property
    def location(self) -> str:
        schema = self.tables.schema
        return f"{self.description}?schema={schema}" if schema else self.description

    async def schema_revision(self) -> str | None:
        """Return the schema revision the database is at."""
        async with self.engine.connect() as conn:
            return await conn.run_sync(migrations.current_revision, self.tables)


def attach_sqlite_setup(engine: AsyncEngine | Engine) -> None:
    """Put SQLite connections in WAL mode and make write transactions take the lock at BEGIN."""
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling begins lazily and deferred; take it over so
        # that writers lock at BEGIN (no upgrade deadlocks between processes).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get("sagakit_read_only", False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


__all__ = [
    "SqlCore",
    "SqlStore",
    "_Write",
    "attach_sqlite_setup",
    "checked_record",
    "event_params",
    "record_from_row",
    "record_params",
]
