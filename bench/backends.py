"""Where a case's database lives. SQLite today; a PostgreSQL backend plugs in here later.

A backend hands each case a fresh, empty database and the URLs every contender needs
for it (sagakit's store URL, SQLAlchemy sync and async URLs). Floor measurements are
driver-specific and live beside the backend in ``bench.cases.floor``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Database:
    """One fresh database and the URLs that reach it."""

    backend: str
    sagakit_url: str
    sqlalchemy_async_url: str
    sqlalchemy_sync_url: str
    path: Path | None = None


class Backend(Protocol):
    """Makes fresh databases for benchmark cases."""

    name: str

    def unavailable(self) -> str | None:
        """Return why this backend cannot run here, or None if it can."""

    def database(self, workdir: Path, label: str) -> Database:
        """Return a fresh, empty database for one case, created under ``workdir``."""

    def prepare_wal(self, db: Database) -> None:
        """Put the database in the durable, concurrent journal mode (WAL on SQLite)."""


class SqliteBackend:
    """A file in the case's own temporary directory; WAL with ``synchronous=FULL``."""

    name = "sqlite"

    def unavailable(self) -> str | None:
        return None

    def database(self, workdir: Path, label: str) -> Database:
        path = workdir / f"{label}.db"
        return Database(
            backend=self.name,
            sagakit_url=f"sqlite:///{path}",
            sqlalchemy_async_url=f"sqlite+aiosqlite:///{path}",
            sqlalchemy_sync_url=f"sqlite:///{path}",
            path=path,
        )

    def prepare_wal(self, db: Database) -> None:
        # journal_mode=WAL is stored in the file, so any later connection gets it.
        assert db.path is not None
        with sqlite3.connect(db.path) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.close()


BACKENDS: dict[str, Backend] = {"sqlite": SqliteBackend()}


def get_backend(name: str) -> Backend:
    """Return the backend called ``name``; raise ``SystemExit`` naming the known ones."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise SystemExit(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}") from None
