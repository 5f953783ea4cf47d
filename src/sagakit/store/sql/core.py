"""What every part of the SQL store shares: engine, tables, writer connection, errors."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any, TypeVar

from sqlalchemy import (
    Insert,
    Select,
    Update,
    and_,
    insert,
    or_,
    select,
)
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ...errors import StoreError, StoreUnavailable, TransactionConflict
from ...status import TERMINAL
from ..base import SagaStore
from ..records import InboxMark
from ..schema import SagaTables, build_tables
from .rows import (
    _MUTABLE,
    _Write,
    checkpoint_update,
)

log = logging.getLogger("sagakit.store")
_T = TypeVar("_T")

_FINISHED = frozenset(s.value for s in TERMINAL)
#: How many sagas' last written rows are remembered to write only what changed.
_MAX_REMEMBERED = 20_000
#: What a driver raises for a database problem; socket errors can escape unwrapped on connect.
_DRIVER_ERRORS = (DBAPIError, OSError, TimeoutError)


class Fault(Enum):
    """What a driver error means for the caller, as a dialect reads its codes."""

    #: The server rolled the transaction back (deadlock, serialisation): retry at once.
    CONFLICT = "conflict"
    #: The server is going away, not there yet, or overloaded: retry later.
    UNAVAILABLE = "unavailable"


class SqlCore(SagaStore):
    """The state and dialect hooks the SQL store's parts share; dialects override hooks."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        prefix: str = "",
        schema: str | None = None,
        description: str | None = None,
    ) -> None:
        self.engine = engine
        self.tables: SagaTables = build_tables(prefix, schema)
        self.description = description or engine.url.render_as_string(hide_password=True)
        self._writer: AsyncConnection | None = None
        self._writer_lock = asyncio.Lock()
        self._queue: list[_Write] = []
        self._wakeup = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._closing = False
        self._build_statements()
        self._configure_engine()
        #: Statements and commits issued, for benchmarks and tests of the hot path.
        self.statements = 0
        self.commits = 0

    def _configure_engine(self) -> None:
        """Install per-dialect connection setup (SQLite overrides it)."""

    def _insert_ignore(self) -> Insert:
        """An INSERT of a saga row that does nothing if its id exists."""
        raise NotImplementedError

    #: What the driver raises when called directly, past SQLAlchemy (direct writes).
    raw_driver_errors: tuple[type[BaseException], ...] = ()

    #: Execution options of a read (one query, no transaction needed), per dialect.
    read_options: dict[str, Any] = {}

    #: Whether claims lock candidate rows (SKIP LOCKED); SQLite has one lock for everything.
    locks_rows = True

    def _lock_candidates(self, query: Select[Any]) -> Select[Any]:
        """Make a claim's candidate query lock its rows against other claimers."""
        return query.with_for_update(skip_locked=True)

    async def _prepare_schema(self, conn: AsyncConnection) -> None:
        """Take the migration lock and create the schema (namespace) if the dialect has one."""

    async def _after_schema(self, conn: AsyncConnection) -> None:
        """Release what ``_prepare_schema`` took, if the transaction end does not."""

    def _after_batch(self, conn: Connection, applied: list[_Write]) -> None:
        """Run inside a group commit's transaction after its writes (PostgreSQL: NOTIFY)."""

    async def _writer_failed(self, error: BaseException, doing: str) -> BaseException:
        """Translate a writer-side error; after an outage, drop the writer connection."""
        if not isinstance(error, (*_DRIVER_ERRORS, *self.raw_driver_errors)):
            return error
        translated = self._translate(error, doing)
        if isinstance(translated, StoreUnavailable):
            await self._reset_writer()
        return translated

    async def _reset_writer(self) -> None:
        """Drop the writer connection after an outage; the next write reconnects."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await self._writer.invalidate()
            with contextlib.suppress(Exception):
                await self._writer.close()
        self._writer = None

    #: The writer connection's driver connection (dropped with the writer).
    _driver: Any = None
    _driver_of: Any = None

    async def _writer_driver(self) -> Any:
        """The driver's own connection under the writer connection (call holding the writer)."""
        if self._driver is None or self._driver_of is not self._writer:
            conn = await self._writer_connection()
            self._driver = (await conn.get_raw_connection()).driver_connection
            self._driver_of = conn
        return self._driver

    async def _writer_connection(self) -> AsyncConnection:
        if self._writer is None:
            try:
                self._writer = await self.engine.connect()
            except _DRIVER_ERRORS as e:
                raise self._translate(e, "connecting") from e
        return self._writer

    async def _in_writer(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run ``fn(connection, *args)`` on the writer connection (SQLite: in its thread)."""
        conn = await self._writer_connection()
        return await conn.run_sync(fn, *args)

    def _build_statements(self) -> None:
        t = self.tables.instances
        self._update = checkpoint_update(t, _MUTABLE)
        self._updates: dict[tuple[str, ...], Update] = {_MUTABLE: self._update}
        self._written: dict[str, dict[str, Any]] = {}
        self._insert_event = insert(self.tables.events)
        self._insert_ignore_statement = self._insert_ignore()
        self._insert_outbox = insert(self.tables.outbox)
        self._insert_inbox = insert(self.tables.inbox)

    def _not_open(self) -> StoreError:
        return StoreError(f"store {self.description} is not open; use `async with Runtime(...)`")

    def _seen_clause(self, marks: Iterable[InboxMark]) -> Any:
        """Rows of the inbox that record any of ``marks``."""
        i = self.tables.inbox
        return or_(
            *(and_(i.c.consumer == m.consumer, i.c.message_id == m.message_id) for m in marks)
        )

    def _duplicates(self, conn: Connection, marks: list[InboxMark]) -> set[InboxMark]:
        """The marks of ``marks`` that are already recorded."""
        if not marks:
            return set()
        i = self.tables.inbox
        rows = conn.execute(select(i.c.consumer, i.c.message_id).where(self._seen_clause(marks)))
        return {InboxMark(consumer, message_id) for consumer, message_id in rows}

    def _remember(self, saga_id: str, params: dict[str, Any]) -> None:
        """Keep the row as written, while the saga may still be checkpointed by us."""
        if params["status"] in _FINISHED or params["lease_owner"] is None:
            self._written.pop(saga_id, None)
            return
        if len(self._written) >= _MAX_REMEMBERED:
            self._written.clear()
        self._written[saga_id] = params

    def _too_large(self, write: _Write) -> StoreError | None:
        """Explain a failed write by its size, where the server limits it (MariaDB)."""
        return None

    async def _read(self, query: Any) -> builtins.list[Row[Any]]:
        try:
            return await self._fetch(query)
        except _DRIVER_ERRORS as e:
            raise self._translate(e, "reading sagas") from e

    async def _fetch(self, query: Any) -> builtins.list[Row[Any]]:
        """Every row of ``query``, read on a pooled connection (a dialect may read elsewhere)."""
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(sagakit_read_only=True, **self.read_options)
            return list((await conn.execute(query)).all())

    def _translate(self, error: BaseException, doing: str) -> StoreError:
        """Map a driver error to ``StoreUnavailable`` (retry later) or ``StoreError``.

        The error is SQLAlchemy's wrapper, or one the driver raised past SQLAlchemy on a
        direct write (``raw_driver_errors``); either way its code decides.
        """
        if isinstance(error, DBAPIError):
            driver: BaseException | None = error.orig
            text = str(error.orig) if error.orig is not None else str(error)
            invalidated = error.connection_invalidated
        elif isinstance(error, self.raw_driver_errors):
            driver, text, invalidated = error, f"{type(error).__name__}: {error}", False
        else:
            reason = f"{type(error).__name__}: {error}"
            return StoreUnavailable(f"{self.description} is unavailable while {doing}: {reason}")
        fault = self._fault(driver)
        if fault is None and "deadlock" in text.lower():
            fault = Fault.CONFLICT
        if fault is Fault.CONFLICT:
            return TransactionConflict(f"{self.description} rolled back {doing}: {text}")
        if fault is Fault.UNAVAILABLE or invalidated or self._is_transient(text):
            return StoreUnavailable(f"{self.description} is unavailable while {doing}: {text}")
        return StoreError(f"{self.description} failed while {doing}: {text}{self._hint(text)}")

    def _hint(self, text: str) -> str:
        """What to do about a permanent error, where the driver's text does not say."""
        lowered = text.lower()
        if lowered.startswith("database ") and "does not exist" in lowered:
            name = self.engine.url.database
            return (
                f"; create the database first: createdb {name} (or CREATE DATABASE {name}; "
                "in psql), then sagakit creates its tables on start"
            )
        if "unknown database" in lowered:
            name = self.engine.url.database
            return f"; create the database first: CREATE DATABASE {name};"
        if "no such table" in lowered or "does not exist" in lowered or "doesn't exist" in lowered:
            return "; create the schema with `sagakit migrate --db URL` or Runtime(migrate=True)"
        return ""

    def _fault(self, driver_error: BaseException | None) -> Fault | None:
        """Classify a driver error by its code (SQLSTATE, errno); ``None``: the code says
        nothing, and the message markers below decide. Dialects override it."""
        return None

    #: Driver messages that mean "try again later", for errors whose code says nothing.
    transient_markers: tuple[str, ...] = (
        "database is locked",
        "disk i/o error",
        "connection",
        "timeout",
        "server closed",
        "terminating",
        "shutting down",
        "starting up",
        "refused",
        "lost connection",
        "gone away",
        "can't connect",
        "deadlock",
    )

    def _is_transient(self, text: str) -> bool:
        lowered = text.lower()
        return any(marker in lowered for marker in self.transient_markers)
