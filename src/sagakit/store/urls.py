"""Turn a store URL (``memory://``, ``sqlite:///path``, ``postgresql://…``) into a store."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import StaticPool

from ..errors import ConfigurationError
from .base import SagaStore
from .idle_ping import ping_when_idle
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
        "hide_parameters": True,
    }
    if backend in ("postgresql", "postgres"):
        _require("asyncpg", "postgres")
        from .postgres import PostgresStore

        server_settings = {"application_name": "sagakit"}
        if settings.statement_timeout:
            server_settings["statement_timeout"] = str(int(settings.statement_timeout * 1000))
        if settings.idle_transaction_timeout:
            # a process stopped inside a transaction (SIGSTOP, a debugger, a VM pause) keeps
            # its row locks; claims skip locked rows, so its sagas would never be recovered
            server_settings["idle_in_transaction_session_timeout"] = str(
                int(settings.idle_transaction_timeout * 1000)
            )
        pg_args = {"timeout": settings.connect_timeout, "server_settings": server_settings}
        engine = create_async_engine(
            clean.set(drivername="postgresql+asyncpg"), connect_args=pg_args, **options
        )
        store = PostgresStore(
            engine, prefix=settings.table_prefix, schema=settings.db_schema, description=description
        )
        store.connect_args = pg_args
        if settings.pool_pre_ping:
            ping_when_idle(engine)
        return store
    _require("aiomysql", "mysql")
    from .mysql import MysqlStore

    connect_args: dict[str, Any] = {"connect_timeout": settings.connect_timeout}
    session = []
    if settings.statement_timeout:
        session.append(f"max_statement_time={float(settings.statement_timeout)}")
    if settings.idle_transaction_timeout:
        # see the PostgreSQL branch: a frozen process must not keep its row locks
        session.append(
            f"idle_transaction_timeout={max(1, round(settings.idle_transaction_timeout))}"
        )
    if session:
        connect_args["init_command"] = f"SET SESSION {', '.join(session)}"
    target = clean.set(drivername="mysql+aiomysql")
    driver_args, driver_params = target.get_dialect()().create_connect_args(target)
    driver_params.update(connect_args)

    async def connect() -> Any:
        # aiomysql's connect_timeout covers the TCP connect only, not the handshake after
        # it: a host that accepts and then says nothing would hang for a minute
        import aiomysql

        try:
            return await asyncio.wait_for(
                aiomysql.connect(*driver_args, **driver_params), settings.connect_timeout
            )
        except TimeoutError:
            raise OSError(
                f"no answer from {target.host}:{target.port or 3306} within the connect "
                f"timeout of {settings.connect_timeout:g}s (?connect_timeout=SECONDS)"
            ) from None

    engine = create_async_engine(
        target,
        async_creator=connect,
        pool_recycle=3600,
        # InnoDB's REPEATABLE READ keeps locks on every row a claim scans (running sagas of
        # other workers included); READ COMMITTED releases the rows that did not match.
        isolation_level="READ COMMITTED",
        **options,
    )
    if settings.pool_pre_ping:
        ping_when_idle(engine)
    return MysqlStore(engine, prefix=settings.table_prefix, schema=None, description=description)


def redact(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (and no part of it shown)."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        # everything before the last "@" may be a password, even one with "@" in it
        userinfo, host = rest.rsplit("@", 1)
        user, colon, _ = userinfo.partition(":")
        return f"{scheme}://{user}{':***' if colon else ''}@{host}"
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return url


#: Query parameters passed through to each driver, besides sagakit's own settings.
_DRIVER_PARAMETERS = {
    "postgresql": ("sslmode", "sslrootcert", "sslcert", "sslkey", "target_session_attrs"),
    "mysql": ("charset", "ssl_ca", "ssl_cert", "ssl_key", "unix_socket"),
    "sqlite": (),
}


def _check_query(url: str, parsed: URL, backend: str) -> None:
    """Refuse query parameters neither sagakit nor the driver understands, naming them."""
    family = {"postgres": "postgresql", "mariadb": "mysql"}.get(backend, backend)
    ours = sorted({*StoreSettings.model_fields, "schema", "prefix"} - {"db_schema", "table_prefix"})
    if family == "sqlite":
        ours = ["prefix"]
    valid = [*ours, *_DRIVER_PARAMETERS.get(family, ())]
    unknown = [name for name in parsed.query if name not in valid]
    if unknown:
        raise ConfigurationError(
            f"store URL {redact(url)!r}: unknown parameter {unknown[0]!r}; valid parameters "
            f"for {family} are: {', '.join(valid)}"
        )


def _check_shape(url: str) -> None:
    """Catch the URL mistakes SQLAlchemy would answer with a traceback."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigurationError(
            f"store URL {redact(url)!r} has no scheme; use one of: {_SUPPORTED}"
        )
    if scheme.split("+")[0] == "sqlite" and rest and not rest.startswith("/"):
        raise ConfigurationError(
            f"store URL {url!r} has two slashes after sqlite:, so {rest.split('/')[0]!r} "
            f"would be read as a host; write sqlite:///{rest} (a path relative to here) or "
            f"sqlite:////absolute/path/{rest.rsplit('/', 1)[-1]}"
        )
    authority = rest.split("/", 1)[0]
    if authority.count("@") > 1:
        raise ConfigurationError(
            f"store URL {redact(url)!r} has more than one '@': percent-encode an '@' in the "
            "user name or password as %40 (urllib.parse.quote(password, safe=''))"
        )


def _sqlite_path(url: str, database: str | None) -> str:
    if not database or database == ":memory:":
        return ":memory:"
    path = Path(database).expanduser()
    if path.is_dir():
        raise ConfigurationError(
            f"store URL {url!r}: {str(path)!r} is a folder; name a database file in it, "
            f"e.g. sqlite:///{path / 'sagas.db'}"
        )
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
    if isinstance(url, str) and not url.strip():
        raise ConfigurationError(
            f"store URL is empty; give one such as {DEFAULT_URL!r} (a file here) or "
            "postgresql://user@host/db, or leave the option out for the default"
        )
    url = DEFAULT_URL if url is None else url
    if not isinstance(url, str):
        raise ConfigurationError(f"store URL must be a string such as {DEFAULT_URL!r}, got {url!r}")
    if url.startswith("memory://"):
        from .memory import MemoryStore

        return MemoryStore()
    _check_shape(url)
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018 - a bad port (``[::1``) only shows when it is read
    except (ArgumentError, ValueError) as e:
        raise ConfigurationError(
            f"store URL {redact(url)!r} cannot be parsed ({e}); use one of: {_SUPPORTED}"
        ) from None
    backend = parsed.get_backend_name()
    _check_query(url, parsed, backend)
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
