"""The SQL store: SQLAlchemy 2 Core (async) on SQLite, PostgreSQL and MariaDB.

Writes go through one writer connection and are group-committed: while one transaction
is being committed, the checkpoints of other sagas queue up and the next transaction
takes them all. A step is still durable before the saga's next step starts, because
``save`` returns only after the transaction holding it committed.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    Insert,
    Select,
    Update,
    and_,
    bindparam,
    event,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..errors import ConcurrencyError, StoreError, StoreUnavailable, TransactionConflict
from ..history import EventType
from ..status import ARCHIVABLE, RUNNABLE, TERMINAL, Reason, SagaStatus
from . import migrate as migrations
from .base import SagaStore
from .records import EventQuery, OutboxMessage, SagaEvent, SagaQuery, SagaRecord, lease_to
from .schema import SagaTables, build_tables

log = logging.getLogger("sagakit.store")

_T = TypeVar("_T")

#: Columns a checkpoint rewrites; identity columns (id, type, kind, created_at) never change.
_MUTABLE = (
    "status",
    "reason",
    "current_step",
    "step_index",
    "data",
    "attempt",
    "crashes",
    "next_attempt_at",
    "timeout_at",
    "version",
    "lease_owner",
    "lease_expires_at",
    "definition_hash",
    "paused_from",
    "last_seq",
    "updated_at",
    "completed_at",
    "archived_at",
    "error_type",
    "error_message",
    "error_stack",
)
_EVENT_COLUMNS = (
    "saga_id",
    "seq",
    "type",
    "step",
    "attempt",
    "at",
    "duration_ms",
    "output",
    "error",
    "actor",
    "source_ip",
    "reason",
)
_FINISHED = frozenset(s.value for s in TERMINAL)
_MAX_BATCH = 256
#: How many sagas' last written rows are remembered to write only what changed.
_MAX_REMEMBERED = 20_000
#: What a driver raises for a database problem; socket errors can escape unwrapped on connect.
_DRIVER_ERRORS = (DBAPIError, OSError, TimeoutError)
#: SQLSTATE classes that mean "the server is going away or not there yet": retry later.
_TRANSIENT_SQLSTATES = ("08", "57P", "53", "40001", "40P01")
#: Deadlock and serialisation failures: the server rolled back; retry at once.
_CONFLICT_STATES = frozenset({"40P01", "40001"})


@dataclass(slots=True)
class _Write:
    """One queued checkpoint (or creation) waiting for the next group commit.

    Its row parameters are taken when it is queued, so the caller may go on changing
    the record (the engine replaces ``data`` rather than mutating it).
    """

    saga_id: str
    expected_version: int | None  # None: create
    params: dict[str, Any]
    events: Sequence[SagaEvent]
    outbox: Sequence[OutboxMessage]
    future: asyncio.Future[bool] = field(repr=False)
    columns: tuple[str, ...] = _MUTABLE  # the columns this checkpoint changes


class _IsolateWrites(Exception):
    """A shared transaction failed for a reason other than an outage; retry writes alone."""


class _BatchConflict(Exception):
    """A multi-row update matched fewer rows than it carried; retry the batch row by row."""


def record_params(record: SagaRecord) -> dict[str, Any]:
    """Return the bind parameters of a saga row."""
    return {
        "id": record.id,
        "saga_type": record.saga_type,
        "kind": record.kind,
        "created_at": record.created_at,
        **{name: getattr(record, name) for name in _MUTABLE},
    }


def record_from_row(row: Row[Any]) -> SagaRecord:
    """Build a ``SagaRecord`` from a ``saga_instances`` row."""
    values = dict(row._mapping)
    values["status"] = SagaStatus(values["status"])
    values["reason"] = Reason(values["reason"]) if values["reason"] else None
    values["paused_from"] = SagaStatus(values["paused_from"]) if values["paused_from"] else None
    return SagaRecord(**values)


def checked_record(row: Row[Any]) -> SagaRecord:
    """Build a ``SagaRecord`` a worker can run; ``ValueError`` says what in the row is bad.

    SQLite keeps any value in any column, and an import or a hand edit can put text in a
    counter: such a row must be set aside, not crash every claim that meets it.
    """
    record = record_from_row(row)
    for name in ("version", "attempt", "crashes", "step_index", "last_seq"):
        value = getattr(record, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} is {value!r:.40}, not a whole number >= 0")
    if not isinstance(record.data, dict):
        raise ValueError(f"data is a {type(record.data).__name__}, not a JSON object")
    return record


def event_params(event: SagaEvent) -> dict[str, Any]:
    """Return the bind parameters of a ``saga_events`` row."""
    return {name: getattr(event, name) for name in _EVENT_COLUMNS}


class SqlStore(SagaStore):
    """A ``SagaStore`` on any SQLAlchemy async engine; dialect quirks are small overrides."""

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

    # -- dialect hooks ------------------------------------------------------------------

    def _configure_engine(self) -> None:
        """Install per-dialect connection setup (SQLite overrides it)."""

    def _insert_ignore(self) -> Insert:
        """An INSERT of a saga row that does nothing if its id exists."""
        raise NotImplementedError

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

    # -- lifecycle ------------------------------------------------------------------------

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

    async def _writer_failed(self, error: BaseException, doing: str) -> BaseException:
        """Translate a writer-side error; after an outage, drop the writer connection."""
        if not isinstance(error, _DRIVER_ERRORS):
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

    async def _writer_connection(self) -> AsyncConnection:
        if self._writer is None:
            try:
                self._writer = await self.engine.connect()
            except _DRIVER_ERRORS as e:
                raise self._translate(e, "connecting") from e
        return self._writer

    async def schema_revision(self) -> str | None:
        """Return the schema revision the database is at."""
        async with self.engine.connect() as conn:
            return await conn.run_sync(migrations.current_revision, self.tables)

    # -- writes ---------------------------------------------------------------------------

    def _build_statements(self) -> None:
        t = self.tables.instances
        self._update = (
            update(t)
            .where(t.c.id == bindparam("b_id"), t.c.version == bindparam("b_expected"))
            .values({name: bindparam(name) for name in _MUTABLE})
        )
        self._updates: dict[tuple[str, ...], Update] = {_MUTABLE: self._update}
        self._written: dict[str, dict[str, Any]] = {}
        self._insert_event = insert(self.tables.events)
        self._insert_ignore_statement = self._insert_ignore()
        self._insert_outbox = insert(self.tables.outbox)

    async def create(
        self, record: SagaRecord, events: Sequence[SagaEvent] = ()
    ) -> tuple[SagaRecord, bool]:
        params = record_params(record)
        created = await self._enqueue(_Write(record.id, None, params, events, (), self._future()))
        if created:
            self._remember(record.id, params)
            return record.copy(), True
        existing = await self.get(record.id)
        if existing is None:  # pragma: no cover - deleted between the two statements
            raise StoreError(f"saga {record.id!r} exists but could not be read back")
        return existing, False

    async def save(
        self,
        record: SagaRecord,
        *,
        expected_version: int,
        events: Sequence[SagaEvent] = (),
        outbox: Sequence[OutboxMessage] = (),
    ) -> None:
        params = record_params(record)
        params["b_id"] = record.id
        params["b_expected"] = expected_version
        columns: tuple[str, ...] = _MUTABLE
        before = self._written.get(record.id)
        if before is not None and before["version"] == expected_version:
            # The version check guarantees the row still holds what we last wrote, so only
            # the changed columns need writing: fewer index entries and WAL pages touched.
            columns = tuple(name for name in _MUTABLE if params[name] != before[name])
        write = _Write(record.id, expected_version, params, events, outbox, self._future())
        write.columns = columns
        try:
            await self._enqueue(write)
        except ConcurrencyError:
            self._written.pop(record.id, None)
            raise
        self._remember(record.id, params)

    def _remember(self, saga_id: str, params: dict[str, Any]) -> None:
        """Keep the row as written, while the saga may still be checkpointed by us."""
        if params["status"] in _FINISHED or params["lease_owner"] is None:
            self._written.pop(saga_id, None)
            return
        if len(self._written) >= _MAX_REMEMBERED:
            self._written.clear()
        self._written[saga_id] = params

    def _future(self) -> asyncio.Future[bool]:
        return asyncio.get_running_loop().create_future()

    async def _enqueue(self, write: _Write) -> bool:
        if self._flusher is None or self._closing:
            raise StoreError(f"store {self.description} is not open; use `async with Runtime(...)`")
        self._queue.append(write)
        self._wakeup.set()
        return await write.future

    async def _flush_forever(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                batch = self._queue[:_MAX_BATCH]
                del self._queue[:_MAX_BATCH]
                await self._flush(batch)
            if self._closing:
                return

    async def _flush(self, batch: list[_Write]) -> None:
        if len(batch) > 1:
            try:
                await self._flush_batch(batch, isolate=True)
                return
            except _IsolateWrites:
                # one write broke the shared transaction: write each alone, so that only
                # the faulty one fails
                for write in batch:
                    await self._flush_batch([write], isolate=False)
                return
        await self._flush_batch(batch, isolate=False)

    async def _flush_batch(self, batch: list[_Write], *, isolate: bool) -> None:
        try:
            async with self._writer_lock:
                try:
                    outcomes = await self._in_writer(self._write_batch, batch, False)
                except _BatchConflict:
                    outcomes = await self._in_writer(self._write_batch, batch, True)
        except Exception as e:  # every waiter must hear of a failed commit
            error = await self._writer_failed(e, "writing a checkpoint")
            if isolate and not isinstance(error, StoreUnavailable):
                raise _IsolateWrites() from e
            for write in batch:
                if not write.future.done():
                    write.future.set_exception(self._too_large(write) or error)
            return
        for write, applied in zip(batch, outcomes, strict=True):
            if write.future.done():
                continue
            if write.expected_version is not None and not applied:
                write.future.set_exception(
                    ConcurrencyError(
                        f"saga {write.saga_id!r} is no longer at version "
                        f"{write.expected_version}; another writer changed it"
                    )
                )
            else:
                write.future.set_result(applied)

    def _too_large(self, write: _Write) -> StoreError | None:
        """Explain a failed write by its size, where the server limits it (MariaDB)."""
        return None

    async def _in_writer(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run ``fn(connection, *args)`` on the writer connection (SQLite: in its thread)."""
        conn = await self._writer_connection()
        return await conn.run_sync(fn, *args)

    def _write_batch(
        self, conn: Connection, batch: list[_Write], row_by_row: bool
    ) -> builtins.list[bool]:
        """Write a batch of creations and checkpoints in one transaction."""
        outcomes: list[bool] = []
        with conn.begin():
            insert_ignore = self._insert_ignore_statement
            for write in batch:
                if write.expected_version is None:
                    result = conn.execute(insert_ignore, write.params)
                    self.statements += 1
                    outcomes.append(result.rowcount == 1)
                else:
                    outcomes.append(False)
            saves = [i for i, w in enumerate(batch) if w.expected_version is not None]
            for i, ok in self._apply_updates(conn, [batch[i] for i in saves], row_by_row):
                outcomes[saves[i]] = ok
            applied = [w for w, ok in zip(batch, outcomes, strict=True) if ok]
            events = [event_params(e) for w in applied for e in w.events]
            if events:
                conn.execute(self._insert_event, events)
                self.statements += 1
            messages = [self._outbox_params(m) for w in applied for m in w.outbox]
            if messages:
                conn.execute(self._insert_outbox, messages)
                self.statements += 1
            self._after_batch(conn, applied)
        self.commits += 1
        return outcomes

    def _apply_updates(
        self, conn: Connection, saves: list[_Write], row_by_row: bool
    ) -> builtins.list[tuple[int, bool]]:
        if not saves:
            return []
        multi = len(saves) > 1 and not row_by_row and conn.dialect.supports_sane_multi_rowcount
        if multi:
            groups: dict[tuple[str, ...], list[_Write]] = {}
            for write in saves:
                groups.setdefault(write.columns, []).append(write)
            for columns, writes in groups.items():
                result = conn.execute(self._update_of(columns), [w.params for w in writes])
                self.statements += 1
                if result.rowcount != len(writes):
                    raise _BatchConflict()
            return [(i, True) for i in range(len(saves))]
        updated = []
        for i, write in enumerate(saves):
            result = conn.execute(self._update_of(write.columns), write.params)
            self.statements += 1
            updated.append((i, result.rowcount == 1))
        return updated

    def _update_of(self, columns: tuple[str, ...]) -> Update:
        """The checkpoint UPDATE that sets ``columns`` (cached per column set)."""
        statement = self._updates.get(columns)
        if statement is None:
            t = self.tables.instances
            statement = (
                update(t)
                .where(t.c.id == bindparam("b_id"), t.c.version == bindparam("b_expected"))
                .values({name: bindparam(name) for name in columns})
            )
            self._updates[columns] = statement
        return statement

    @staticmethod
    def _outbox_params(message: OutboxMessage) -> dict[str, Any]:
        return {
            "saga_id": message.saga_id,
            "topic": message.topic,
            "payload": message.payload,
            "headers": message.headers,
            "created_at": message.created_at,
            "published_at": message.published_at,
            "attempts": message.attempts,
        }

    # -- claiming -------------------------------------------------------------------------

    def _runnable(self, now: datetime) -> Any:
        t = self.tables.instances
        return and_(
            t.c.status.in_([s.value for s in RUNNABLE]),
            or_(t.c.lease_expires_at.is_(None), t.c.lease_expires_at <= now),
            or_(
                t.c.next_attempt_at.is_(None),
                t.c.next_attempt_at <= now,
                and_(
                    t.c.status != SagaStatus.COMPENSATING.value,
                    t.c.timeout_at.is_not(None),
                    t.c.timeout_at <= now,
                ),
            ),
        )

    async def claim(
        self,
        owner: str,
        *,
        now: datetime,
        lease_until: datetime,
        limit: int,
        saga_types: Iterable[str] | None = None,
        saga_ids: Iterable[str] | None = None,
        exclude_ids: Iterable[str] = (),
    ) -> builtins.list[SagaRecord]:
        t = self.tables.instances
        query = select(t).where(self._runnable(now))
        if saga_types is not None:
            query = query.where(t.c.saga_type.in_(list(saga_types)))
        if saga_ids is not None:
            query = query.where(t.c.id.in_(list(saga_ids)))
        excluded = list(exclude_ids)
        if excluded:
            query = query.where(t.c.id.not_in(excluded))
        query = self._lock_candidates(query.order_by(t.c.created_at).limit(limit))
        if self._flusher is None:
            raise StoreError(f"store {self.description} is not open")
        try:
            if not self.locks_rows and not await self._read(query.with_only_columns(t.c.id)):
                # Look before taking the single write lock: idle polling never blocks writers.
                return []
            async with self._writer_lock:
                claimed = await self._in_writer(self._claim_rows, query, owner, now, lease_until)
            for record in claimed:
                self._remember(record.id, record_params(record))
            return claimed
        except _DRIVER_ERRORS as e:
            raise await self._writer_failed(e, "claiming sagas") from e

    def _claim_rows(
        self,
        conn: Connection,
        query: Select[Any],
        owner: str,
        now: datetime,
        lease_until: datetime,
    ) -> builtins.list[SagaRecord]:
        """Lease the rows ``query`` finds, in one transaction."""
        with conn.begin():
            try:
                claimed = [checked_record(row) for row in conn.execute(query).all()]
            except _DRIVER_ERRORS:
                raise
            except Exception:  # one unreadable row: read them one by one, set it aside
                claimed = self._readable_rows(conn, query, now)
            params = []
            for record in claimed:
                expected = record.version
                lease_to(record, owner, now, lease_until)
                params.append({**record_params(record), "b_id": record.id, "b_expected": expected})
            if params:
                conn.execute(self._update, params)
                self.statements += 1
        return claimed

    def _readable_rows(
        self, conn: Connection, query: Select[Any], now: datetime
    ) -> builtins.list[SagaRecord]:
        """Load the rows ``query`` finds one at a time; mark unreadable ones PAUSED/corrupt."""
        t = self.tables.instances
        readable: dict[str, SagaRecord] = {}
        set_aside = True
        while set_aside:  # once bad rows are set aside, the query can find others in their place
            set_aside = False
            for (saga_id,) in conn.execute(query.with_only_columns(t.c.id)).all():
                if saga_id not in readable:
                    set_aside |= not self._read_or_set_aside(conn, saga_id, now, readable)
        return list(readable.values())

    def _read_or_set_aside(
        self, conn: Connection, saga_id: str, now: datetime, readable: dict[str, SagaRecord]
    ) -> bool:
        """Add the saga to ``readable``, or mark it PAUSED/corrupt; return which happened."""
        t = self.tables.instances
        try:
            readable[saga_id] = checked_record(
                conn.execute(select(t).where(t.c.id == saga_id)).one()
            )
            return True
        except _DRIVER_ERRORS:
            raise
        except Exception as e:
            log.error(
                "saga %s: its stored row cannot be read (%s); set aside as PAUSED/corrupt",
                saga_id,
                e,
                extra={"saga_id": saga_id},
            )
            conn.execute(
                update(t)
                .where(t.c.id == saga_id)
                .values(
                    status=SagaStatus.PAUSED.value,
                    reason=Reason.CORRUPT.value,
                    paused_from=None,
                    lease_owner=None,
                    lease_expires_at=None,
                    error_type=f"{type(e).__module__}.{type(e).__qualname__}",
                    error_message=f"the stored row cannot be read: {e}",
                    updated_at=now,
                )
            )
            self.statements += 1
            return False

    async def renew(self, owner: str, saga_ids: Iterable[str], lease_until: datetime) -> set[str]:
        wanted = sorted(saga_ids)
        if not wanted:
            return set()
        t = self.tables.instances
        if not self.locks_rows:  # one database lock for everything: one transaction
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(
                        update(t)
                        .where(t.c.id.in_(wanted), t.c.lease_owner == owner)
                        .values(lease_expires_at=lease_until)
                    )
                    held = await conn.execute(
                        select(t.c.id).where(t.c.id.in_(wanted), t.c.lease_owner == owner)
                    )
                    return set(wanted) - {row[0] for row in held}
            except _DRIVER_ERRORS as e:
                raise self._translate(e, "renewing leases") from e
        # Row locks: renew each lease in its own autocommitted statement. A statement that
        # holds one row lock can wait for a checkpoint but never deadlock with it, and a
        # renewer frozen between statements holds no lock that would hide a saga.
        renew_one = (
            update(t)
            .where(t.c.id == bindparam("b_id"), t.c.lease_owner == owner)
            .values(lease_expires_at=lease_until)
        )
        lost: set[str] = set()
        try:
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                for saga_id in wanted:
                    result = await conn.execute(renew_one, {"b_id": saga_id})
                    if result.rowcount == 0:
                        lost.add(saga_id)
        except _DRIVER_ERRORS as e:
            raise self._translate(e, "renewing leases") from e
        return lost

    # -- reads ----------------------------------------------------------------------------

    async def _read(self, query: Any) -> builtins.list[Row[Any]]:
        try:
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(sagakit_read_only=True)
                return list((await conn.execute(query)).all())
        except _DRIVER_ERRORS as e:
            raise self._translate(e, "reading sagas") from e

    async def get(self, saga_id: str) -> SagaRecord | None:
        t = self.tables.instances
        rows = await self._read(select(t).where(t.c.id == saga_id))
        return record_from_row(rows[0]) if rows else None

    async def list(self, query: SagaQuery | None = None) -> builtins.list[SagaRecord]:
        query = query or SagaQuery()
        t = self.tables.instances
        sql = select(t)
        if query.statuses is not None:
            sql = sql.where(t.c.status.in_([s.value for s in query.statuses]))
        if query.saga_type is not None:
            sql = sql.where(t.c.saga_type == query.saga_type)
        if query.id_contains is not None:
            sql = sql.where(t.c.id.contains(query.id_contains, autoescape=True))
        if query.created_before is not None:
            sql = sql.where(t.c.created_at < query.created_before)
        if query.created_after is not None:
            sql = sql.where(t.c.created_at > query.created_after)
        if query.updated_before is not None:
            sql = sql.where(t.c.updated_at < query.updated_before)
        if query.reasons is not None:
            sql = sql.where(t.c.reason.in_([r.value for r in query.reasons]))
        if query.finished_after is not None:
            sql = sql.where(t.c.completed_at > query.finished_after)
        if query.started_by is not None:
            e = self.tables.events
            starters = select(e.c.saga_id).where(
                e.c.type == EventType.SAGA_STARTED.value, e.c.actor == query.started_by
            )
            sql = sql.where(t.c.id.in_(starters))
        if not query.include_archived:
            sql = sql.where(t.c.archived_at.is_(None))
        if query.before is not None:
            at, last_id = query.before
            sql = sql.where(or_(t.c.created_at < at, and_(t.c.created_at == at, t.c.id < last_id)))
        sql = sql.order_by(t.c.created_at.desc(), t.c.id.desc())
        sql = sql.limit(query.limit).offset(query.offset)
        return [record_from_row(row) for row in await self._read(sql)]

    async def events(self, saga_id: str) -> builtins.list[SagaEvent]:
        e = self.tables.events
        rows = await self._read(select(e).where(e.c.saga_id == saga_id).order_by(e.c.seq))
        return [SagaEvent(**{k: row._mapping[k] for k in _EVENT_COLUMNS}) for row in rows]

    async def find_events(self, query: EventQuery) -> builtins.list[SagaEvent]:
        e, t = self.tables.events, self.tables.instances
        sql = select(e)
        if query.types is not None:
            sql = sql.where(e.c.type.in_(query.types))
        if query.since is not None:
            sql = sql.where(e.c.at >= query.since)
        if query.actor is not None:
            sql = sql.where(e.c.actor == query.actor)
        if query.saga_id is not None:
            sql = sql.where(e.c.saga_id == query.saga_id)
        if query.saga_type is not None:
            sql = sql.where(e.c.saga_id.in_(select(t.c.id).where(t.c.saga_type == query.saga_type)))
        sql = sql.order_by(e.c.at.desc(), e.c.saga_id.desc(), e.c.seq.desc()).limit(query.limit)
        rows = await self._read(sql)
        return [SagaEvent(**{k: row._mapping[k] for k in _EVENT_COLUMNS}) for row in rows]

    async def _delete_sagas(self, conn: AsyncConnection, ids: builtins.list[str]) -> int:
        """Delete these sagas with their history and outbox rows; return how many existed."""
        t, e, o = self.tables.instances, self.tables.events, self.tables.outbox
        deleted = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            await conn.execute(e.delete().where(e.c.saga_id.in_(chunk)))
            await conn.execute(o.delete().where(o.c.saga_id.in_(chunk)))
            deleted += (await conn.execute(t.delete().where(t.c.id.in_(chunk)))).rowcount
        return deleted

    async def delete(self, saga_id: str) -> bool:
        try:
            async with self.engine.begin() as conn:
                return bool(await self._delete_sagas(conn, [saga_id]))
        except _DRIVER_ERRORS as err:
            raise self._translate(err, "deleting a saga") from err

    async def archive(self, *, finished_before: datetime, now: datetime) -> int:
        t = self.tables.instances
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    update(t)
                    .where(
                        t.c.status.in_([s.value for s in ARCHIVABLE]),
                        t.c.archived_at.is_(None),
                        t.c.completed_at < finished_before,
                    )
                    .values(archived_at=now, version=t.c.version + 1)
                )
        except _DRIVER_ERRORS as err:
            raise self._translate(err, "archiving sagas") from err
        return int(result.rowcount)

    async def purge(self, *, archived_before: datetime, dry_run: bool = False) -> int:
        t = self.tables.instances
        doomed = select(t.c.id).where(
            t.c.archived_at.is_not(None), t.c.archived_at < archived_before
        )
        try:
            async with self.engine.begin() as conn:
                ids = [row[0] for row in await conn.execute(doomed)]
                if dry_run or not ids:
                    return len(ids)
                await self._delete_sagas(conn, ids)
        except _DRIVER_ERRORS as err:
            raise self._translate(err, "deleting archived sagas") from err
        return len(ids)

    async def count_by_status(self) -> dict[SagaStatus, int]:
        t = self.tables.instances
        rows = await self._read(select(t.c.status, func.count()).group_by(t.c.status))
        return {SagaStatus(status): int(n) for status, n in (tuple(row) for row in rows)}

    async def count_by_type(self) -> dict[tuple[str, SagaStatus], int]:
        t = self.tables.instances
        rows = await self._read(
            select(t.c.saga_type, t.c.status, func.count()).group_by(t.c.saga_type, t.c.status)
        )
        return {
            (saga_type, SagaStatus(status)): int(n)
            for saga_type, status, n in (tuple(row) for row in rows)
        }

    async def count_by_reason(self) -> dict[tuple[SagaStatus, str | None], int]:
        t = self.tables.instances
        rows = await self._read(
            select(t.c.status, t.c.reason, func.count()).group_by(t.c.status, t.c.reason)
        )
        return {
            (SagaStatus(status), reason): int(n)
            for status, reason, n in (tuple(row) for row in rows)
        }

    async def pending_outbox(self, limit: int = 100) -> builtins.list[OutboxMessage]:
        o = self.tables.outbox
        rows = await self._read(
            select(o).where(o.c.published_at.is_(None)).order_by(o.c.id).limit(limit)
        )
        return [OutboxMessage(**dict(row._mapping)) for row in rows]

    async def mark_published(self, message_ids: Iterable[int], at: datetime) -> None:
        o = self.tables.outbox
        ids = list(message_ids)
        if not ids:
            return
        try:
            async with self.engine.begin() as conn:
                await conn.execute(update(o).where(o.c.id.in_(ids)).values(published_at=at))
        except _DRIVER_ERRORS as e:
            raise self._translate(e, "marking outbox messages published") from e

    # -- errors ---------------------------------------------------------------------------

    def _translate(self, error: BaseException, doing: str) -> StoreError:
        """Map a driver error to ``StoreUnavailable`` (retry later) or ``StoreError``."""
        if not isinstance(error, DBAPIError):
            reason = f"{type(error).__name__}: {error}"
            return StoreUnavailable(f"{self.description} is unavailable while {doing}: {reason}")
        text = str(error.orig) if error.orig is not None else str(error)
        state = str(
            getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", "") or ""
        )
        transient_state = bool(state) and state.startswith(_TRANSIENT_SQLSTATES)
        if state in _CONFLICT_STATES or "deadlock" in text.lower():
            return TransactionConflict(f"{self.description} rolled back {doing}: {text}")
        if error.connection_invalidated or transient_state or self._is_transient(text):
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

    #: Driver messages that mean "try again later" rather than "this is wrong".
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
