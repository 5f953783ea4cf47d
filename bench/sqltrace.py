"""Count the SQL statements a contender executes, the same way for every contender.

SQLite: ``sqlite3``'s trace callback, on every connection. It sees every statement the
library steps, including ``BEGIN`` and ``COMMIT`` issued by drivers, and one entry per
row of an ``executemany``. It works the same for sagakit (aiosqlite), DBOS (pysqlite)
and the hand-written baseline.

PostgreSQL: SQLAlchemy's ``before_cursor_execute`` and ``commit`` events (sagakit, DBOS
and the baseline all reach the server through SQLAlchemy). An ``executemany`` counts one
per row, as on SQLite (the server runs one execution per row); ``BEGIN`` is not seen
(the drivers send it themselves), COMMIT is counted by the ``commit`` event. What does
not go through SQLAlchemy is not counted: DBOS's LISTEN connection (it only listens).
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool
from sqlalchemy.util import await_

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")

#: How each backend's statements are counted (goes into the JSON beside the counts).
METHODS = {
    "sqlite": "sqlite3 trace callback",
    "postgresql": "SQLAlchemy cursor and commit events, and asyncpg statements sent past it",
    "mariadb": "SQLAlchemy cursor and commit events",
}


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

    def __call__(self, sql: str, times: int = 1) -> None:
        kind = _kind(sql)
        with self._lock:
            self.counts[kind] += times

    def snapshot(self) -> Counter[str]:
        """Return a copy of the counts so far."""
        with self._lock:
            return Counter(self.counts)

    def attach_everywhere(self, backend: str) -> None:
        """Trace every statement any engine in this process runs from now on.

        Whatever engines a contender makes (sagakit's SQLite store, for one, writes
        through a pysqlite engine of its own beside its aiosqlite one), they are all seen.
        """
        if backend != "sqlite":
            self.attach_sqlalchemy(Engine)
            self.attach_asyncpg_direct()
            return

        @event.listens_for(Pool, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            if isinstance(dbapi_connection, sqlite3.Connection):
                dbapi_connection.set_trace_callback(self)
                return
            inner = getattr(dbapi_connection, "_connection", None)
            if isinstance(inner, aiosqlite.Connection):
                # aiosqlite's own thread owns the sqlite3 connection: set the callback
                # through aiosqlite's queue.
                await_(inner.set_trace_callback(self))

    def attach_sqlalchemy(self, target: Engine | type[Engine]) -> None:
        """Count statements and commits through SQLAlchemy's events on ``target``."""

        def _execute(
            _conn: Any,
            _cursor: Any,
            statement: str,
            parameters: Sequence[Any] | None,
            _context: Any,
            executemany: bool,
        ) -> None:
            self(statement, len(parameters or ()) if executemany else 1)

        def _commit(_conn: Any) -> None:
            self("COMMIT")

        event.listen(target, "before_cursor_execute", _execute)
        event.listen(target, "commit", _commit)

    def attach_asyncpg_direct(self) -> None:
        """Count statements sent on asyncpg connections past SQLAlchemy.

        sagakit's PostgreSQL store sends each group commit as one statement outside a
        transaction block (``Connection.fetch``; SQLAlchemy's own calls prepare first and
        are counted above): one write and one commit each.
        """
        import asyncpg

        if getattr(asyncpg.Connection.fetch, "_sagakit_traced", False):
            return
        original = asyncpg.Connection.fetch

        async def fetch(connection: Any, query: str, *args: Any, **kwargs: Any) -> Any:
            result = await original(connection, query, *args, **kwargs)
            with self._lock:
                self.counts["write"] += 1
                self.counts["commit"] += 1
            return result

        fetch._sagakit_traced = True  # type: ignore[attr-defined]
        asyncpg.Connection.fetch = fetch  # type: ignore[method-assign]


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
