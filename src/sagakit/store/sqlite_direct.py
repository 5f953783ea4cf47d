"""SQLite group commits on the writer thread's own ``sqlite3`` connection.

SQLAlchemy Core costs more per statement than SQLite takes to run one: compiling the
cache key, processing parameters, wrapping the cursor. So the checkpoint statements
are compiled once here, from the same SQLAlchemy schema, and run as prepared statements
(``sqlite3`` keeps them by text) inside ``BEGIN IMMEDIATE … COMMIT``, with each value
converted by the column type's own bind processor: the rows are exactly what the
general path writes. Inbox marks are looked up under the write lock first; a write whose
message was applied before writes nothing. Batches that start sagas take the general
path.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from sqlalchemy import Dialect, Insert, bindparam, insert, select
from sqlalchemy.engine import Connection

from .records import InboxMark, utcnow
from .schema import SagaTables
from .sql.prepared import Prepared
from .sql.rows import (
    _EVENT_COLUMNS,
    _Write,
    checkpoint_update,
    event_params,
    inbox_params,
    message_params,
)


class DirectWrites:
    """Writes a plain batch of creations and checkpoints on a raw ``sqlite3`` connection."""

    def __init__(self, tables: SagaTables, dialect: Dialect, insert_ignore: Insert) -> None:
        self._tables = tables
        self._dialect = dialect
        self._create = Prepared(insert_ignore, dialect)
        events = tables.events
        self._event = Prepared(
            insert(events).values({c: bindparam(c) for c in _EVENT_COLUMNS}), dialect
        )
        outbox = [c.name for c in tables.outbox.c if c.name != "id"]
        self._message = Prepared(
            insert(tables.outbox).values({c: bindparam(c) for c in outbox}), dialect
        )
        inbox = tables.inbox
        self._mark = Prepared(
            insert(inbox).values(
                {c: bindparam(c) for c in ("consumer", "message_id", "received_at")}
            ),
            dialect,
        )
        self._seen = str(
            select(inbox.c.message_id)
            .where(inbox.c.consumer == bindparam("c"), inbox.c.message_id == bindparam("m"))
            .compile(dialect=dialect)
        )
        self._updates: dict[tuple[str, ...], Prepared] = {}
        #: Statements run (an executemany counts once), for the hot-path counters.
        self.statements = 0

    def _update(self, columns: tuple[str, ...]) -> Prepared:
        prepared = self._updates.get(columns)
        if prepared is None:
            statement = checkpoint_update(self._tables.instances, columns)
            prepared = self._updates[columns] = Prepared(statement, self._dialect)
        return prepared

    def write(self, conn: Connection, batch: Sequence[_Write]) -> list[bool]:
        """Write ``batch`` in one transaction; per write, whether it was applied."""
        raw: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
        raw.execute("BEGIN IMMEDIATE")
        done = False
        try:
            for write in batch:  # the write lock is held: no one can mark them meanwhile
                write.duplicate = any(self._marked(raw, m) for m in write.inbox)
            outcomes = [not w.duplicate and self._row(raw, w) for w in batch]
            applied = [w for w, ok in zip(batch, outcomes, strict=True) if ok]
            now = utcnow()
            marks = [self._mark.values(inbox_params(m, now)) for w in applied for m in w.inbox]
            if marks:
                raw.executemany(self._mark.sql, marks)
                self.statements += 1
            events = [self._event.values(event_params(e)) for w in applied for e in w.events]
            if events:
                raw.executemany(self._event.sql, events)
                self.statements += 1
            messages = [self._message.values(message_params(m)) for w in applied for m in w.outbox]
            if messages:
                raw.executemany(self._message.sql, messages)
                self.statements += 1
            raw.execute("COMMIT")
            done = True
        finally:
            if not done and raw.in_transaction:
                raw.execute("ROLLBACK")
        return outcomes

    def _marked(self, raw: sqlite3.Connection, mark: InboxMark) -> bool:
        self.statements += 1
        return raw.execute(self._seen, (mark.consumer, mark.message_id)).fetchone() is not None

    def _row(self, raw: sqlite3.Connection, write: _Write) -> bool:
        if write.expected_version is None:
            cursor = raw.execute(self._create.sql, self._create.values(write.params))
        else:
            prepared = self._update(write.columns)
            cursor = raw.execute(prepared.sql, prepared.values(write.params))
        self.statements += 1
        return cursor.rowcount == 1
