"""Where a case's database lives: a SQLite file, a fresh PostgreSQL schema or MariaDB database.

A backend hands each case a fresh, empty database and the URLs every contender needs
for it (sagakit's store URL, SQLAlchemy sync and async URLs, and for PostgreSQL the
schema name and a plain DSN for the raw driver). Floor measurements are driver-specific
and live in ``bench.cases.floor``. ``drop`` removes what ``database`` made; the parent
process also calls ``sweep`` after every case, so that a case that crashed or timed out
leaves nothing behind on the server.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.engine import make_url

#: The PostgreSQL server and database cases create their schemas in.
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
#: Environment variable that overrides it (``--pg-url`` sets it for the case processes).
PG_URL_ENV = "SAGAKIT_BENCH_PG_URL"


@dataclass(frozen=True, slots=True)
class Database:
    """One fresh database and the URLs that reach it."""

    backend: str
    sagakit_url: str
    sqlalchemy_async_url: str
    sqlalchemy_sync_url: str
    path: Path | None = None
    #: PostgreSQL: the schema that holds every table of this database, and a plain
    #: ``postgresql://`` DSN (no schema) for drivers used directly (asyncpg, psycopg).
    schema: str | None = None
    dsn: str | None = None


class Backend(Protocol):
    """Makes fresh databases for benchmark cases."""

    name: str

    def unavailable(self) -> str | None:
        """Return why this backend cannot run here, or None if it can."""

    def database(self, workdir: Path, name: str) -> Database:
        """Return a fresh, empty database called ``name`` (``[a-z0-9_]``) for one case."""

    def prepare_wal(self, db: Database) -> None:
        """Put the database in the durable, concurrent journal mode (WAL on SQLite)."""

    def drop(self, db: Database) -> None:
        """Remove what ``database`` made (for SQLite the temporary directory goes anyway)."""

    def sweep(self, prefix: str) -> int:
        """Remove every database whose name starts with ``prefix``; return how many."""

    def describe(self, workdir_root: Path) -> dict[str, Any]:
        """Describe the database engine, its durability settings and where it writes."""


def filesystem(path: Path) -> str:
    """Return the filesystem type and device holding ``path`` (fsync cost depends on it)."""
    try:
        import psutil  # type: ignore[import-untyped, unused-ignore]  # the bench extra
    except ImportError:
        return "unknown (psutil is not installed)"
    best: Any = None
    for part in psutil.disk_partitions(all=True):
        if str(path).startswith(part.mountpoint) and (
            best is None or len(part.mountpoint) > len(best.mountpoint)
        ):
            best = part
    return f"{best.fstype} on {best.device} ({best.mountpoint})" if best else "unknown"


class SqliteBackend:
    """A file in the case's own temporary directory; WAL with ``synchronous=FULL``."""

    name = "sqlite"

    def unavailable(self) -> str | None:
        return None

    def database(self, workdir: Path, name: str) -> Database:
        path = workdir / f"{name}.db"
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

    def drop(self, db: Database) -> None:
        """Nothing to do: the file is in the case's temporary directory."""

    def sweep(self, prefix: str) -> int:
        return 0

    def describe(self, workdir_root: Path) -> dict[str, Any]:
        return {
            "engine": f"SQLite {sqlite3.sqlite_version}",
            "settings": {"journal_mode": "WAL", "synchronous": "FULL"},
            "where": f"fresh temp directory per case on {filesystem(workdir_root.resolve())}",
        }


#: What ``PostgresBackend.describe`` reports of the server's configuration.
_PG_SETTINGS = (
    "synchronous_commit",
    "fsync",
    "wal_sync_method",
    "full_page_writes",
    "commit_delay",
    "shared_buffers",
    "max_connections",
)


class PostgresBackend:
    """A fresh schema per case in one database of a running server, dropped afterwards.

    The server keeps its own durability settings (``synchronous_commit=on`` by default:
    each commit waits for its WAL flush). The schema is created with psycopg (sync,
    because cases ask for databases from inside their own event loop).
    """

    name = "postgresql"

    @property
    def url(self) -> str:
        return os.environ.get(PG_URL_ENV, DEFAULT_PG_URL)

    def _connect(self) -> Any:
        import psycopg

        return psycopg.connect(self.url, autocommit=True, connect_timeout=5)

    def unavailable(self) -> str | None:
        for module in ("asyncpg", "psycopg"):
            try:
                __import__(module)
            except ImportError:
                return f"the {module} driver is not installed (pip install -e '.[bench]')"
        try:
            with self._connect() as conn:
                conn.execute("SELECT 1")
        except Exception as e:  # any failure means "cannot run here"
            return f"cannot connect to {make_url(self.url).render_as_string()}: {e}"
        return None

    def database(self, workdir: Path, name: str) -> Database:
        with self._connect() as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
            conn.execute(f'CREATE SCHEMA "{name}"')
        base = make_url(self.url)
        return Database(
            backend=self.name,
            sagakit_url=base.update_query_dict({"schema": name}).render_as_string(
                hide_password=False
            ),
            sqlalchemy_async_url=base.set(drivername="postgresql+asyncpg").render_as_string(
                hide_password=False
            ),
            sqlalchemy_sync_url=base.set(drivername="postgresql+psycopg").render_as_string(
                hide_password=False
            ),
            schema=name,
            dsn=base.set(drivername="postgresql").render_as_string(hide_password=False),
        )

    def prepare_wal(self, db: Database) -> None:
        """Nothing to do: PostgreSQL always writes ahead."""

    def drop(self, db: Database) -> None:
        if db.schema is not None:
            with self._connect() as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{db.schema}" CASCADE')

    def sweep(self, prefix: str) -> int:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", (prefix,)
            ).fetchall()
            for (schema,) in rows:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        return len(rows)

    def describe(self, workdir_root: Path) -> dict[str, Any]:
        with self._connect() as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            settings = {s: conn.execute(f"SHOW {s}").fetchone()[0] for s in _PG_SETTINGS}
            try:
                data = conn.execute("SHOW data_directory").fetchone()[0]
            except Exception:  # only superusers may read it
                data = None
        url = make_url(self.url)
        where = f"fresh schema per case in database {url.database!r} at {url.host}:{url.port}"
        if data is not None and url.host in ("127.0.0.1", "localhost", "::1"):
            where += f", data directory {data} on {filesystem(Path(data))}"
        return {"engine": f"PostgreSQL {version}", "settings": settings, "where": where}


#: The MariaDB server cases create their databases on.
DEFAULT_MYSQL_URL = "mysql://root@127.0.0.1:3306/"
#: Environment variable that overrides it.
MYSQL_URL_ENV = "SAGAKIT_BENCH_MYSQL_URL"

#: What ``MariadbBackend.describe`` reports of the server's configuration.
_MYSQL_SETTINGS = (
    "innodb_flush_log_at_trx_commit",
    "sync_binlog",
    "log_bin",
    "innodb_flush_method",
    "innodb_buffer_pool_size",
    "tx_isolation",
    "max_connections",
)


class MariadbBackend:
    """A fresh database per case on a running MariaDB server, dropped afterwards.

    The server keeps its own durability settings (``innodb_flush_log_at_trx_commit=1`` by
    default: each commit waits for its redo log flush). Databases are created with
    PyMySQL (sync, which aiomysql brings), for the same reason as PostgreSQL's schemas.
    """

    name = "mariadb"

    @property
    def url(self) -> str:
        return os.environ.get(MYSQL_URL_ENV, DEFAULT_MYSQL_URL)

    def _connect(self) -> Any:
        import pymysql

        url = make_url(self.url)
        return pymysql.connect(
            host=url.host or "127.0.0.1",
            port=url.port or 3306,
            user=url.username or "root",
            password=url.password or "",
            autocommit=True,
            connect_timeout=5,
        )

    def unavailable(self) -> str | None:
        for module in ("aiomysql", "pymysql"):
            try:
                __import__(module)
            except ImportError:
                return f"the {module} driver is not installed (pip install -e '.[bench]')"
        try:
            with self._connect() as conn, conn.cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception as e:  # any failure means "cannot run here"
            return f"cannot connect to {make_url(self.url).render_as_string()}: {e}"
        return None

    def database(self, workdir: Path, name: str) -> Database:
        with self._connect() as conn, conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        base = make_url(self.url).set(database=name)

        def url(driver: str) -> str:
            return base.set(drivername=driver).render_as_string(hide_password=False)

        return Database(
            backend=self.name,
            sagakit_url=url("mysql"),
            sqlalchemy_async_url=url("mysql+aiomysql"),
            sqlalchemy_sync_url=url("mysql+pymysql"),
            schema=None,
            dsn=url("mysql"),
        )

    def prepare_wal(self, db: Database) -> None:
        """Nothing to do: InnoDB always writes its redo log first."""

    def drop(self, db: Database) -> None:
        name = make_url(db.sagakit_url).database
        with self._connect() as conn, conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")

    def sweep(self, prefix: str) -> int:
        with self._connect() as conn, conn.cursor() as cursor:
            cursor.execute("SHOW DATABASES")
            names = [row[0] for row in cursor.fetchall() if str(row[0]).startswith(prefix)]
            for name in names:
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        return len(names)

    def describe(self, workdir_root: Path) -> dict[str, Any]:
        with self._connect() as conn, conn.cursor() as cursor:
            cursor.execute("SELECT VERSION()")
            version = cursor.fetchone()[0]
            settings = {}
            for name in _MYSQL_SETTINGS:
                cursor.execute("SHOW VARIABLES LIKE %s", (name,))
                row = cursor.fetchone()
                settings[name] = row[1] if row else None
        url = make_url(self.url)
        where = f"fresh database per case at {url.host}:{url.port or 3306}"
        return {"engine": f"MariaDB {version}", "settings": settings, "where": where}


BACKENDS: dict[str, Backend] = {
    "sqlite": SqliteBackend(),
    "postgresql": PostgresBackend(),
    "mariadb": MariadbBackend(),
}


def get_backend(name: str) -> Backend:
    """Return the backend called ``name``; raise ``SystemExit`` naming the known ones."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise SystemExit(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}") from None
