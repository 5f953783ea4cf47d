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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Insert,
    Select,
    and_,
    bindparam,
    event,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..errors import ConcurrencyError, StoreError, StoreUnavailable
from ..status import ARCHIVABLE, RUNNABLE, Reason, SagaStatus
from . import migrate as migrations
from .base import SagaStore
from .records import OutboxMessage, SagaEvent, SagaQuery, SagaRecord
from .schema import SagaTables, build_tables

log = logging.getLogger("sagakit.store")

#: Columns a checkpoint rewrites; identity columns (id, type, kind, created_at) never change.
_MUTABLE = (
    "status",
    "reason",
    "current_step",
    "step_index",
    "data",
    "attempt",
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
_MAX_BATCH = 256
#: What a driver raises for a database problem; socket errors can escape unwrapped on connect.
_DRIVER_ERRORS = (DBAPIError, OSError, TimeoutError)
#: SQLSTATE classes that mean "the server is going away or not there yet": retry later.
_TRANSIENT_SQLSTATES = ("08", "57P", "53", "40001", "40P01")


@dataclass(slots=True)
class _Write:
    """One queued checkpoint (or creation) waiting for the next group commit."""

    record: SagaRecord
    expected_version: int | None  # None: create
    events: Sequence[SagaEvent]
    outbox: Sequence[OutboxMessage]
    future: asyncio.Future[bool] = field(repr=False)


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

    async def _after_batch(self, conn: AsyncConnection, applied: list[_Write]) -> None:
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
            while self._queue:
                await asyncio.sleep(0.001)
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        if self._writer is not None:
            await self._writer.close()
            self._writer = None
        await self.engine.dispose()

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
        self._insert_event = insert(self.tables.events)
        self._insert_outbox = insert(self.tables.outbox)

    async def create(
        self, record: SagaRecord, events: Sequence[SagaEvent] = ()
    ) -> tuple[SagaRecord, bool]:
        created = await self._enqueue(_Write(record, None, events, (), self._future()))
        if created:
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
        await self._enqueue(_Write(record.copy(), expected_version, events, outbox, self._future()))

    def _future(self) -> asyncio.Future[bool]:
        return asyncio.get_running_loop().create_future()

    async def _enqueue(self, write: _Write) -> bool:
        if self._flusher is None:
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
                    outcomes = await self._write_batch(batch, row_by_row=False)
                except _BatchConflict:
                    outcomes = await self._write_batch(batch, row_by_row=True)
        except Exception as e:  # every waiter must hear of a failed commit
            if isolate and not isinstance(e, StoreUnavailable | OperationalError):
                raise _IsolateWrites() from e
            error = (
                self._translate(e, "writing a checkpoint") if isinstance(e, _DRIVER_ERRORS) else e
            )
            if isinstance(error, StoreUnavailable):
                await self._reset_writer()
            for write in batch:
                if not write.future.done():
                    write.future.set_exception(error)
            return
        for write, applied in zip(batch, outcomes, strict=True):
            if write.future.done():
                continue
            if write.expected_version is not None and not applied:
                write.future.set_exception(
                    ConcurrencyError(
                        f"saga {write.record.id!r} is no longer at version "
                        f"{write.expected_version}; another writer changed it"
                    )
                )
            else:
                write.future.set_result(applied)

    async def _write_batch(self, batch: list[_Write], *, row_by_row: bool) -> builtins.list[bool]:
        conn = await self._writer_connection()
        outcomes: list[bool] = []
        async with conn.begin():
            creates = [w for w in batch if w.expected_version is None]
            saves = [w for w in batch if w.expected_version is not None]
            created: dict[int, bool] = {}
            for write in creates:
                result = await conn.execute(self._insert_ignore(), record_params(write.record))
                self.statements += 1
                created[id(write)] = result.rowcount == 1
            updated = await self._apply_updates(conn, saves, row_by_row)
            for write in batch:
                outcomes.append(
                    created[id(write)] if write.expected_version is None else updated[id(write)]
                )
            applied = [w for w, ok in zip(batch, outcomes, strict=True) if ok]
            events = [event_params(e) for w in applied for e in w.events]
            if events:
                await conn.execute(self._insert_event, events)
                self.statements += 1
            messages = [self._outbox_params(m) for w in applied for m in w.outbox]
            if messages:
                await conn.execute(self._insert_outbox, messages)
                self.statements += 1
            await self._after_batch(conn, applied)
        self.commits += 1
        return outcomes

    async def _apply_updates(
        self, conn: AsyncConnection, saves: list[_Write], row_by_row: bool
    ) -> dict[int, bool]:
        if not saves:
            return {}
        params = [
            {**record_params(w.record), "b_id": w.record.id, "b_expected": w.expected_version}
            for w in saves
        ]
        multi = len(saves) > 1 and not row_by_row and conn.dialect.supports_sane_multi_rowcount
        if multi:
            result = await conn.execute(self._update, params)
            self.statements += 1
            if result.rowcount != len(saves):
                raise _BatchConflict()
            return {id(w): True for w in saves}
        updated: dict[int, bool] = {}
        for write, row in zip(saves, params, strict=True):
            result = await conn.execute(self._update, row)
            self.statements += 1
            updated[id(write)] = result.rowcount == 1
        return updated

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
    ) -> builtins.list[SagaRecord]:
        t = self.tables.instances
        query = select(t).where(self._runnable(now))
        if saga_types is not None:
            query = query.where(t.c.saga_type.in_(list(saga_types)))
        if saga_ids is not None:
            query = query.where(t.c.id.in_(list(saga_ids)))
        query = self._lock_candidates(query.order_by(t.c.created_at).limit(limit))
        if self._flusher is None:
            raise StoreError(f"store {self.description} is not open")
        try:
            if not self.locks_rows and not await self._read(query.with_only_columns(t.c.id)):
                # Look before taking the single write lock: idle polling never blocks writers.
                return []
            async with self._writer_lock:
                conn = await self._writer_connection()
                async with conn.begin():
                    return await self._claim_rows(conn, query, owner, now, lease_until)
        except _DRIVER_ERRORS as e:
            error = self._translate(e, "claiming sagas")
            if isinstance(error, StoreUnavailable):
                await self._reset_writer()
            raise error from e

    async def _claim_rows(
        self,
        conn: AsyncConnection,
        query: Select[Any],
        owner: str,
        now: datetime,
        lease_until: datetime,
    ) -> builtins.list[SagaRecord]:
        claimed = [record_from_row(row) for row in (await conn.execute(query)).all()]
        params = []
        for record in claimed:
            expected = record.version
            record.lease_owner = owner
            record.lease_expires_at = lease_until
            record.version += 1
            record.attempt += 1
            record.updated_at = now
            params.append({**record_params(record), "b_id": record.id, "b_expected": expected})
        if params:
            await conn.execute(self._update, params)
            self.statements += 1
        return claimed

    async def renew(self, owner: str, saga_ids: Iterable[str], lease_until: datetime) -> set[str]:
        wanted = list(saga_ids)
        if not wanted:
            return set()
        t = self.tables.instances
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
                kept = {row[0] for row in held}
        except _DRIVER_ERRORS as e:
            raise self._translate(e, "renewing leases") from e
        return set(wanted) - kept

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

    async def delete(self, saga_id: str) -> bool:
        t, e, o = self.tables.instances, self.tables.events, self.tables.outbox
        try:
            async with self.engine.begin() as conn:
                await conn.execute(e.delete().where(e.c.saga_id == saga_id))
                await conn.execute(o.delete().where(o.c.saga_id == saga_id))
                result = await conn.execute(t.delete().where(t.c.id == saga_id))
        except _DRIVER_ERRORS as err:
            raise self._translate(err, "deleting a saga") from err
        return bool(result.rowcount)

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
        t, e, o = self.tables.instances, self.tables.events, self.tables.outbox
        doomed = select(t.c.id).where(
            t.c.archived_at.is_not(None), t.c.archived_at < archived_before
        )
        try:
            async with self.engine.begin() as conn:
                ids = [row[0] for row in await conn.execute(doomed)]
                if dry_run or not ids:
                    return len(ids)
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    await conn.execute(e.delete().where(e.c.saga_id.in_(chunk)))
                    await conn.execute(o.delete().where(o.c.saga_id.in_(chunk)))
                    await conn.execute(t.delete().where(t.c.id.in_(chunk)))
        except _DRIVER_ERRORS as err:
            raise self._translate(err, "deleting archived sagas") from err
        return len(ids)

    async def count_by_status(self) -> dict[SagaStatus, int]:
        t = self.tables.instances
        rows = await self._read(select(t.c.status, func.count()).group_by(t.c.status))
        return {SagaStatus(status): int(n) for status, n in (tuple(row) for row in rows)}

    async def next_due(self, now: datetime) -> datetime | None:
        t = self.tables.instances
        active = t.c.status.in_([s.value for s in RUNNABLE])
        rows = await self._read(
            select(func.min(t.c.next_attempt_at), func.min(t.c.lease_expires_at)).where(active)
        )
        candidates = [v for v in rows[0] if v is not None] if rows else []
        return min(candidates) if candidates else None

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
        if error.connection_invalidated or transient_state or self._is_transient(text):
            return StoreUnavailable(f"{self.description} is unavailable while {doing}: {text}")
        hint = ""
        if "no such table" in text or "does not exist" in text:
            hint = "; create the schema with `sagakit migrate --db URL` or Runtime(migrate=True)"
        return StoreError(f"{self.description} failed while {doing}: {text}{hint}")

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


def attach_sqlite_setup(engine: AsyncEngine) -> None:
    """Put SQLite connections in WAL mode and make write transactions take the lock at BEGIN."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling begins lazily and deferred; take it over so
        # that writers lock at BEGIN (no upgrade deadlocks between processes).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get("sagakit_read_only", False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
