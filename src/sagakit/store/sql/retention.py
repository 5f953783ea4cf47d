"""Archiving finished sagas and deleting old ones with their history."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import (
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from ...status import ARCHIVABLE
from .core import (
    _DRIVER_ERRORS,
    SqlCore,
)


class Retention(SqlCore):
    """Archive, purge and delete."""

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

    async def archive(
        self, *, finished_before: datetime, now: datetime, saga_types: Iterable[str] | None = None
    ) -> int:
        t = self.tables.instances
        statement = update(t).where(
            t.c.status.in_([s.value for s in ARCHIVABLE]),
            t.c.archived_at.is_(None),
            t.c.completed_at < finished_before,
        )
        if saga_types is not None:
            statement = statement.where(t.c.saga_type.in_(list(saga_types)))
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    statement.values(archived_at=now, version=t.c.version + 1)
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
