"""Group commit: checkpoints of many sagas written in one transaction by one writer.

While one transaction is being committed, the checkpoints of other sagas queue up and
the next transaction takes them all. A step is still durable before the saga's next step
starts, because ``save`` returns only after the transaction holding it committed.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Sequence

from sqlalchemy import (
    Update,
)
from sqlalchemy.engine import Connection

from ...errors import ConcurrencyError, DuplicateMessage, StoreError, StoreUnavailable
from ..records import Checkpoint, SagaEvent, SagaRecord, utcnow
from .core import (
    SqlCore,
)
from .rows import (
    _MUTABLE,
    _Write,
    checkpoint_update,
    event_params,
    inbox_params,
    message_params,
    record_params,
)

_MAX_BATCH = 256


class _IsolateWrites(Exception):
    """A shared transaction failed for a reason other than an outage; retry writes alone."""


class _BatchConflict(Exception):
    """A multi-row update matched fewer rows than it carried; retry the batch row by row."""


class GroupCommit(SqlCore):
    """Creations and checkpoints, queued and committed together."""

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

    async def commit(self, checkpoint: Checkpoint) -> None:
        record, expected_version = checkpoint.record, checkpoint.expected_version
        params = record_params(record)
        params["b_id"] = record.id
        params["b_expected"] = expected_version
        columns: tuple[str, ...] = _MUTABLE
        before = self._written.get(record.id)
        if before is not None and before["version"] == expected_version:
            # The version check guarantees the row still holds what we last wrote, so only
            # the changed columns need writing: fewer index entries and WAL pages touched.
            columns = tuple(name for name in _MUTABLE if params[name] != before[name])
        write = _Write(
            record.id,
            expected_version,
            params,
            checkpoint.events,
            checkpoint.outbox,
            self._future(),
            columns,
            checkpoint.inbox,
            starts=[(record_params(r), events) for r, events in checkpoint.starts],
        )
        try:
            await self._enqueue(write)
        except ConcurrencyError:
            self._written.pop(record.id, None)
            raise
        self._remember(record.id, params)
        if checkpoint.outbox:
            self.outbox_written.fire()

    def _future(self) -> asyncio.Future[bool]:
        return asyncio.get_running_loop().create_future()

    async def _enqueue(self, write: _Write) -> bool:
        if self._flusher is None or self._closing:
            raise self._not_open()
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
                outcomes = await self._write_direct(batch)
                if outcomes is None:
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
            if write.duplicate:
                write.future.set_exception(
                    DuplicateMessage(
                        f"saga {write.saga_id!r}: message "
                        f"{', '.join(m.message_id for m in write.inbox)} was already applied "
                        f"by {write.inbox[0].consumer!r}; nothing written"
                    )
                )
            elif write.expected_version is not None and not applied:
                write.future.set_exception(
                    ConcurrencyError(
                        f"saga {write.saga_id!r} is no longer at version "
                        f"{write.expected_version}; another writer changed it"
                    )
                )
            else:
                write.future.set_result(applied)

    async def _write_direct(self, batch: list[_Write]) -> builtins.list[bool] | None:
        """Write ``batch`` past SQLAlchemy's execution layer if the dialect can; else ``None``.

        PostgreSQL sends one statement; SQLite runs prepared statements on the writer
        thread's own connection. Returns, per write, whether it was applied (its version
        check held, or its id was new).
        """
        return None

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
            marked = [m for w in batch for m in w.inbox]
            if marked:
                seen = self._duplicates(conn, marked)
                for write in batch:
                    write.duplicate = any(m in seen for m in write.inbox)
            saves = [
                i for i, w in enumerate(batch) if w.expected_version is not None and not w.duplicate
            ]
            for i, ok in self._apply_updates(conn, [batch[i] for i in saves], row_by_row):
                outcomes[saves[i]] = ok
            applied = [w for w, ok in zip(batch, outcomes, strict=True) if ok]
            started = self._insert_starts(conn, applied)
            events = [event_params(e) for w in applied for e in w.events]
            events += [event_params(e) for e in started]
            if events:
                conn.execute(self._insert_event, events)
                self.statements += 1
            messages = [message_params(m) for w in applied for m in w.outbox]
            if messages:
                conn.execute(self._insert_outbox, messages)
                self.statements += 1
            marks = [inbox_params(m, utcnow()) for w in applied for m in w.inbox]
            if marks:
                conn.execute(self._insert_inbox, marks)
                self.statements += 1
            self._after_batch(conn, applied)
        self.commits += 1
        return outcomes

    def _insert_starts(self, conn: Connection, applied: list[_Write]) -> list[SagaEvent]:
        """Insert the sagas ``applied`` writes start; return the events of the new ones."""
        events: list[SagaEvent] = []
        for write in applied:
            for params, first_events in write.starts:
                result = conn.execute(self._insert_ignore_statement, params)
                self.statements += 1
                if result.rowcount == 1:  # an id that exists is left as it is
                    events.extend(first_events)
        return events

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
            statement = self._updates[columns] = checkpoint_update(self.tables.instances, columns)
        return statement
