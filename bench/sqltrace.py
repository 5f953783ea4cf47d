"""Count the SQL statements SQLite actually executes, via ``sqlite3``'s trace callback.

The callback sees every statement the library steps, including ``BEGIN`` and ``COMMIT``
issued by drivers, and one entry per row of an ``executemany``. It works the same for
sagakit (aiosqlite), DBOS (pysqlite) and the hand-written baseline, so their counts are
comparable.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import Pool
from sqlalchemy.util import await_

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _kind(sql: str) -> str:
    head = sql.lstrip().split(None, 1)
    word = head[0].upper() if head else ""
    if word in _WRITES:
        return "write"
    if word in ("SELECT", "WITH"):
        return "read"
    if word in ("COMMIT", "END"):
        return "commit"
    if word in ("BEGIN", "ROLLBACK", "SAVEPOINT", "RELEASE"):
        return "tx_other"
    return "other"


class SqlTrace:
    """Thread-safe counter of executed statements, by kind (write/read/commit/…)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def __call__(self, sql: str) -> None:
        kind = _kind(sql)
        with self._lock:
            self.counts[kind] += 1

    def snapshot(self) -> Counter[str]:
        """Return a copy of the counts so far."""
        with self._lock:
            return Counter(self.counts)

    def attach_async_engine(self, engine: AsyncEngine) -> None:
        """Trace every connection an aiosqlite-backed SQLAlchemy engine opens from now on."""

        @event.listens_for(engine.sync_engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            # The adapted connection wraps an aiosqlite.Connection, whose own thread owns
            # the sqlite3 connection: set the callback through aiosqlite's queue.
            await_(dbapi_connection._connection.set_trace_callback(self))

    def attach_all_sync_pools(self) -> None:
        """Trace every pysqlite connection any SQLAlchemy pool opens from now on."""

        @event.listens_for(Pool, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            if isinstance(dbapi_connection, sqlite3.Connection):
                dbapi_connection.set_trace_callback(self)


def per_unit(before: Counter[str], after: Counter[str], units: int, unit: str) -> dict[str, float]:
    """Return executed statements per ``unit`` between two snapshots, by kind and in total.

    ``statements`` counts everything but transaction control; ``commits`` counts COMMITs.
    """
    delta = {k: after[k] - before[k] for k in set(after) | set(before)}
    out = {f"{k}_per_{unit}": round(v / units, 3) for k, v in sorted(delta.items()) if v}
    executed = sum(v for k, v in delta.items() if k not in ("commit", "tx_other"))
    out[f"statements_per_{unit}"] = round(executed / units, 3)
    out[f"commits_per_{unit}"] = round(delta.get("commit", 0) / units, 3)
    return out
