"""Turn a store URL (``memory://``, ``sqlite:///path``, ``postgresql://…``) into a store."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import StaticPool

from ..errors import ConfigurationError
from .base import SagaStore
from .settings import StoreSettings

#: The store a Runtime uses when given no URL: a file in the working directory.
DEFAULT_URL = "sqlite:///sagas.db"

_SUPPORTED = (
    "memory://, sqlite:///path/to/file.db, postgresql://user:pass@host/db, "
    "mysql://user:pass@host/db (MariaDB 10.6+)"
)


def _require(module: str, extra: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise ConfigurationError(
            f"this store needs the {module} driver: pip install 'sagakit[{extra}]'"
        ) from None


def _server_store(parsed: URL, backend: str, *, prefix: str, schema: str | None) -> SagaStore:
    settings, clean = StoreSettings.from_url(parsed, table_prefix=prefix, schema=schema)
    description = clean.render_as_string(hide_password=True)
    options: dict[str, Any] = {
        "pool_size": settings.pool_size,
        "max_overflow": settings.max_overflow,
        "pool_pre_ping": settings.pool_pre_ping,
        "hide_parameters": True,
    }
    if backend in ("postgresql", "postgres"):
        _require("asyncpg", "postgres")
        from .postgres import PostgresStore

        server_settings = {"application_name": "sagakit"}
        if settings.statement_timeout:
            server_settings["statement_timeout"] = str(int(settings.statement_timeout * 1000))
        engine = create_async_engine(
            clean.set(drivername="postgresql+asyncpg"),
            connect_args={"timeout": settings.connect_timeout, "server_settings": server_settings},
            **options,
        )
        return PostgresStore(
            engine, prefix=settings.table_prefix, schema=settings.db_schema, description=description
        )
    _require("aiomysql", "mysql")
    from .mysql import MysqlStore

    connect_args: dict[str, Any] = {"connect_timeout": settings.connect_timeout}
    if settings.statement_timeout:
        connect_args["init_command"] = (
            f"SET SESSION max_statement_time={float(settings.statement_timeout)}"
        )
    engine = create_async_engine(
        clean.set(drivername="mysql+aiomysql"),
        connect_args=connect_args,
        pool_recycle=3600,
        **options,
    )
    return MysqlStore(engine, prefix=settings.table_prefix, schema=None, description=description)


def redact(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1] if "@" in url else url


def _sqlite_path(url: str, database: str | None) -> str:
    if not database or database == ":memory:":
        return ":memory:"
    path = Path(database).expanduser()
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        raise ConfigurationError(
            f"store URL {url!r}: the folder {str(folder)!r} does not exist; create it "
            "(mkdir -p) or point the URL at an existing folder"
        )
    target = path if path.exists() else folder
    if not os.access(target, os.W_OK):
        raise ConfigurationError(
            f"store URL {url!r}: {str(target)!r} is not writable by this user; fix its "
            "permissions or choose another path"
        )
    return str(path)


def open_store(url: str | None = None, *, prefix: str = "", schema: str | None = None) -> SagaStore:
    """Return the (not yet opened) store for ``url``; raise ``ConfigurationError`` if invalid."""
    url = url or DEFAULT_URL
    if not isinstance(url, str):
        raise ConfigurationError(f"store URL must be a string such as {DEFAULT_URL!r}, got {url!r}")
    if url.startswith("memory://"):
        from .memory import MemoryStore

        return MemoryStore()
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise ConfigurationError(
            f"store URL {redact(url)!r} cannot be parsed; use one of: {_SUPPORTED}"
        ) from e
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        from .sqlite import SqliteStore

        database = _sqlite_path(redact(url), parsed.database)
        settings, parsed = StoreSettings.from_url(parsed, table_prefix=prefix)
        prefix = settings.table_prefix
        target = parsed.set(drivername="sqlite+aiosqlite", database=database)
        if database == ":memory:":
            # One shared connection, or every pooled connection would see its own empty DB.
            engine = create_async_engine(target, poolclass=StaticPool)
        else:
            engine = create_async_engine(target)
        return SqliteStore(engine, prefix=prefix, schema=None, description=redact(url))
    if backend in ("postgresql", "postgres", "mysql", "mariadb"):
        return _server_store(parsed, backend, prefix=prefix, schema=schema)
    if backend == "mongodb":
        raise ConfigurationError(
            f"store URL {redact(url)!r}: the MongoDB store is not in this version of "
            f"sagakit yet; use one of: {_SUPPORTED}"
        )
    raise ConfigurationError(
        f"store URL {redact(url)!r} names the unknown backend {backend!r}; use one of: {_SUPPORTED}"
    )
