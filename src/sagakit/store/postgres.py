"""PostgreSQL specifics: JSONB, SKIP LOCKED claiming, schemas, and LISTEN/NOTIFY wake-ups."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from sqlalchemy import Connection, Insert, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ..status import SagaStatus
from .pg_checkpoint import OneStatementCheckpoints
from .pg_listen import Listener
from .pg_outbox import DirectOutboxPg
from .sql import SqlStore, _Write
from .sql.core import Fault
from .sql.rows import plain_batch

log = logging.getLogger("sagakit.store")


#: SQLSTATEs of a transaction the server rolled back: serialisation failure, deadlock.
_CONFLICT_STATES = frozenset({"40001", "40P01"})
#: SQLSTATE classes of a server going away or not there yet: connection exceptions (08),
#: operator intervention such as shutdown or termination (57P), insufficient resources (53).
_UNAVAILABLE_CLASSES = ("08", "57P", "53")


class PostgresStore(SqlStore):
    """Many workers on many machines, coordinated by row locks and leases in PostgreSQL."""

    raw_driver_errors = (asyncpg.PostgresError, asyncpg.InterfaceError)

    #: A read is one SELECT: sent as it is, not inside BEGIN … ROLLBACK (two round trips).
    read_options: dict[str, Any] = {"isolation_level": "AUTOCOMMIT"}

    #: Builds the one-statement checkpoints (made on first use, from the tables).
    _one_statement: OneStatementCheckpoints | None = None

    def _fault(self, driver_error: BaseException | None) -> Fault | None:
        state = str(
            getattr(driver_error, "sqlstate", None) or getattr(driver_error, "pgcode", "") or ""
        )
        if state in _CONFLICT_STATES:
            return Fault.CONFLICT
        if state.startswith(_UNAVAILABLE_CLASSES):
            return Fault.UNAVAILABLE
        return None

    @property
    def channel(self) -> str:
        """The NOTIFY channel on which new sagas are announced."""
        return f"{self.tables.prefix}sagakit_{self.tables.schema or 'public'}"

    async def _write_direct(self, batch: list[_Write]) -> list[bool] | None:
        if not plain_batch(batch):
            return None
        if self._one_statement is None:
            t = self.tables
            self._one_statement = OneStatementCheckpoints(
                t,
                self.engine.dialect,
                sagas_channel=self.channel,
                outbox_channel=self.outbox_channel,
            )
        sql, params = self._one_statement.statement(batch)
        driver = await self._writer_driver()
        rows = await driver.fetch(sql, *params)  # errors: _writer_failed translates them
        self.statements += 1
        self.commits += 1
        answers = {row[0]: row[1] for row in rows}
        for write in batch:
            write.duplicate = answers.get(write.saga_id) is True
        return [answers.get(w.saga_id) is False for w in batch]

    #: The relay's claims and marks on the writer's driver connection.
    driver_outbox = DirectOutboxPg

    def _insert_ignore(self) -> Insert:
        return pg_insert(self.tables.instances).on_conflict_do_nothing(index_elements=["id"])

    async def _prepare_schema(self, conn: AsyncConnection) -> None:
        # Concurrent first starts must not race creating tables: serialise migrations.
        key = zlib.crc32(f"sagakit:{self.tables.schema}:{self.tables.prefix}".encode())
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
        if self.tables.schema:
            # look first: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when
            # the schema exists, which a least-privilege application role lacks
            found = await conn.execute(
                text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": self.tables.schema}
            )
            if found.first() is None:
                await conn.execute(text(f'CREATE SCHEMA "{self.tables.schema}"'))

    @property
    def outbox_channel(self) -> str:
        """The NOTIFY channel on which committed outbox messages are announced to relays."""
        return f"{self.channel}_outbox"

    def _after_batch(self, conn: Connection, applied: list[_Write]) -> None:
        pending = SagaStatus.PENDING.value
        created = any(w.expected_version is None and w.params["status"] == pending for w in applied)
        if created or any(w.starts for w in applied):
            # delivered at commit, so a listener never sees a saga that is not there yet
            conn.execute(text("SELECT pg_notify(:c, '')"), {"c": self.channel})
        if any(w.outbox for w in applied):
            conn.execute(text("SELECT pg_notify(:c, '')"), {"c": self.outbox_channel})

    #: Connect arguments (timeout, server settings) the listener shares with the pool.
    connect_args: dict[str, Any] = {}

    async def subscribe(self, callback: Callable[[], None]) -> Callable[[], Awaitable[None]] | None:
        """Call ``callback`` whenever a saga is started anywhere; return the unsubscriber."""
        return await self._listen(self.channel, callback, "new sagas")

    async def listen_outbox(
        self, callback: Callable[[], None]
    ) -> Callable[[], Awaitable[None]] | None:
        """Call ``callback`` whenever any process commits outbox messages."""
        return await self._listen(self.outbox_channel, callback, "outbox messages")

    async def _listen(
        self, channel: str, callback: Callable[[], None], purpose: str
    ) -> Callable[[], Awaitable[None]] | None:
        listener = Listener(
            self.engine.url,
            channel,
            callback,
            purpose=purpose,
            description=self.description,
            connect_args=self.connect_args,
        )
        if not await listener.start():
            return None
        return listener.close
