"""MariaDB/MySQL specifics: INSERT IGNORE, SKIP LOCKED (MariaDB 10.6+), named locks."""

from __future__ import annotations

import json

from sqlalchemy import Insert, insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

from ..errors import CheckpointTooLarge, StoreError
from .mysql_outbox import DirectOutboxMysql
from .sql import SqlStore, _Write
from .sql.core import Fault

#: Server error numbers of a transaction rolled back: deadlock (1213), lock wait timeout
#: (1205; InnoDB rolls back the statement, and the checkpoint is retried whole).
_CONFLICT_ERRNOS = frozenset({1213, 1205})
#: Error numbers of a server going away or not there: too many connections (1040), server
#: shutdown (1053), connection killed (1927), idle transaction ended (4031), and the
#: client's can't connect / gone away / lost connection (2002, 2003, 2006, 2013, 2055).
_UNAVAILABLE_ERRNOS = frozenset({1040, 1053, 1927, 4031, 2002, 2003, 2006, 2013, 2055})


class MysqlStore(SqlStore):
    """The SQL store on MariaDB 10.6+ or MySQL 8."""

    def _fault(self, driver_error: BaseException | None) -> Fault | None:
        args = getattr(driver_error, "args", ())
        errno = args[0] if args and isinstance(args[0], int) else None
        if errno in _CONFLICT_ERRNOS:
            return Fault.CONFLICT
        if errno in _UNAVAILABLE_ERRNOS:
            return Fault.UNAVAILABLE
        return None

    #: The server's largest statement in bytes, read when the store opens.
    max_packet: int | None = None

    async def _after_schema(self, conn: AsyncConnection) -> None:
        # The lock belongs to the session, which goes back to the pool: release it, or the
        # next process to migrate waits out the whole timeout.
        await conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": self._migration_lock})
        found = await conn.execute(text("SELECT @@max_allowed_packet"))
        self.max_packet = int(found.scalar_one())

    def _too_large(self, write: _Write) -> StoreError | None:
        # The server drops the connection on a packet over max_allowed_packet, which reads
        # like an outage ("Lost connection"); measure the write to say what really happened.
        if self.max_packet is None:
            return None
        size = len(json.dumps(write.params.get("data"), default=str).encode())
        size += sum(
            len(json.dumps([e.output, e.error], default=str).encode()) for e in write.events
        )
        if size < self.max_packet * 0.9:
            return None
        return CheckpointTooLarge(
            f"the checkpoint of saga {write.saga_id!r} is about {size:,} bytes; "
            f"{self.description} accepts statements of at most {self.max_packet:,} bytes "
            "(max_allowed_packet): keep large data out of the saga context (store a "
            "reference), or raise max_allowed_packet on the server"
        )

    #: The relay's claims and marks on the writer's driver connection.
    driver_outbox = DirectOutboxMysql

    def _insert_ignore(self) -> Insert:
        return insert(self.tables.instances).prefix_with("IGNORE")

    @property
    def _migration_lock(self) -> str:
        # Named locks are server-wide: name the database and prefix, not just sagakit.
        return f"sagakit:{self.engine.url.database}:{self.tables.prefix}"[:64]

    async def _prepare_schema(self, conn: AsyncConnection) -> None:
        # DDL commits implicitly here, so a named lock (not a transaction) serialises migrations.
        await conn.execute(text("SELECT GET_LOCK(:n, 60)"), {"n": self._migration_lock})
