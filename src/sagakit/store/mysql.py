"""MariaDB/MySQL specifics: INSERT IGNORE, SKIP LOCKED (MariaDB 10.6+), named locks."""

from __future__ import annotations

from sqlalchemy import Insert, insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

from .sql import SqlStore


class MysqlStore(SqlStore):
    """The SQL store on MariaDB 10.6+ or MySQL 8."""

    def _insert_ignore(self) -> Insert:
        return insert(self.tables.instances).prefix_with("IGNORE")

    @property
    def _migration_lock(self) -> str:
        # Named locks are server-wide: name the database and prefix, not just sagakit.
        return f"sagakit:{self.engine.url.database}:{self.tables.prefix}"[:64]

    async def _prepare_schema(self, conn: AsyncConnection) -> None:
        # DDL commits implicitly here, so a named lock (not a transaction) serialises migrations.
        await conn.execute(text("SELECT GET_LOCK(:n, 60)"), {"n": self._migration_lock})

    async def _after_schema(self, conn: AsyncConnection) -> None:
        # The lock belongs to the session, which goes back to the pool: release it, or the
        # next process to migrate waits out the whole timeout.
        await conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": self._migration_lock})
