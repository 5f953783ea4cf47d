"""MariaDB/MySQL specifics: INSERT IGNORE, SKIP LOCKED (MariaDB 10.6+), named locks."""

from __future__ import annotations

from sqlalchemy import Insert, insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

from .sql import SqlStore


class MysqlStore(SqlStore):
    """The SQL store on MariaDB 10.6+ or MySQL 8."""

    def _insert_ignore(self) -> Insert:
        return insert(self.tables.instances).prefix_with("IGNORE")

    async def _prepare_schema(self, conn: AsyncConnection) -> None:
        # DDL commits implicitly here, so a named lock (not a transaction) serialises migrations.
        name = f"sagakit_migrate_{self.tables.prefix}"[:64]
        await conn.execute(text("SELECT GET_LOCK(:n, 60)"), {"n": name})
