"""Reading sagas, their history and the audit trail; counts for reports and metrics."""

from __future__ import annotations

import builtins

from sqlalchemy import (
    and_,
    func,
    or_,
    select,
)

from ...history import EventType
from ...status import SagaStatus
from ..records import EventQuery, SagaEvent, SagaQuery, SagaRecord
from .core import (
    SqlCore,
)
from .rows import (
    _EVENT_COLUMNS,
    record_from_row,
)


class Reads(SqlCore):
    """Queries that never write."""

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
        if query.kind is not None:
            sql = sql.where(t.c.kind == query.kind)
        if query.state is not None:
            sql = sql.where(t.c.current_step == query.state)
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

    async def count_by_state(self, saga_type: str) -> dict[tuple[SagaStatus, str | None], int]:
        t = self.tables.instances
        rows = await self._read(
            select(t.c.status, t.c.current_step, func.count())
            .where(t.c.saga_type == saga_type)
            .group_by(t.c.status, t.c.current_step)
        )
        return {
            (SagaStatus(status), state): int(n) for status, state, n in (tuple(row) for row in rows)
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
