"""An in-process store: fast, and gone with the process. For tests and experiments."""

from __future__ import annotations

import builtins
import copy
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime

from ..errors import ConcurrencyError
from ..history import EventType
from ..status import ARCHIVABLE, RUNNABLE, SagaStatus
from .base import SagaStore
from .memory_delivery import MemoryDelivery
from .records import Checkpoint, EventQuery, SagaEvent, SagaQuery, SagaRecord, lease_to


def matches(record: SagaRecord, query: SagaQuery, started_by: str | None = None) -> bool:
    """Tell whether ``record`` (started by ``started_by``) passes every filter of ``query``."""
    return (
        (query.reasons is None or record.reason in query.reasons)
        and (
            query.finished_after is None
            or (record.completed_at is not None and record.completed_at > query.finished_after)
        )
        and (query.started_by is None or started_by == query.started_by)
        and (query.statuses is None or record.status in query.statuses)
        and (query.saga_type is None or record.saga_type == query.saga_type)
        and (query.kind is None or record.kind == query.kind)
        and (query.state is None or record.current_step == query.state)
        and (query.id_contains is None or query.id_contains in record.id)
        and (query.created_before is None or record.created_at < query.created_before)
        and (query.created_after is None or record.created_at > query.created_after)
        and (query.updated_before is None or record.updated_at < query.updated_before)
        and (query.include_archived or record.archived_at is None)
        and (query.before is None or (record.created_at, record.id) < query.before)
    )


def _detached(record: SagaRecord) -> SagaRecord:
    """A copy sharing nothing with ``record``, as a row read back from a database is.

    A step that changes its context in place must not change what is stored.
    """
    clone = record.copy()
    clone.data = copy.deepcopy(record.data)
    clone.deferred = copy.deepcopy(record.deferred)
    return clone


def is_claimable(record: SagaRecord, now: datetime) -> bool:
    """Tell whether a worker may lease ``record`` at ``now``."""
    if record.status not in RUNNABLE:
        return False
    if record.lease_expires_at is not None and record.lease_expires_at > now:
        return False
    timer_due = record.next_attempt_at is None or record.next_attempt_at <= now
    timed_out = (
        record.status != SagaStatus.COMPENSATING
        and record.timeout_at is not None
        and record.timeout_at <= now
    )
    return timer_due or timed_out


class MemoryStore(MemoryDelivery, SagaStore):
    """Keeps sagas in dictionaries; passes the same contract as the SQL stores."""

    description = "memory://"

    def __init__(self) -> None:
        self._sagas: dict[str, SagaRecord] = {}
        self._events: dict[str, list[SagaEvent]] = {}
        MemoryDelivery.__init__(self)

    async def create(
        self, record: SagaRecord, events: Sequence[SagaEvent] = ()
    ) -> tuple[SagaRecord, bool]:
        existing = self._sagas.get(record.id)
        if existing is not None:
            return _detached(existing), False
        self._sagas[record.id] = _detached(record)
        self._events[record.id] = [replace(e) for e in events]
        return _detached(record), True

    async def commit(self, checkpoint: Checkpoint) -> None:
        record, expected_version = checkpoint.record, checkpoint.expected_version
        current = self._sagas.get(record.id)
        if current is None or current.version != expected_version:
            found = "missing" if current is None else f"at version {current.version}"
            raise ConcurrencyError(
                f"saga {record.id!r} is {found}, not at version {expected_version}; "
                "another writer changed it"
            )
        self._check_marks(record.id, checkpoint.inbox)
        self._sagas[record.id] = _detached(record)
        self._events[record.id].extend(replace(e) for e in checkpoint.events)
        self._add_messages(checkpoint.outbox)
        self._add_marks(checkpoint.inbox)
        for started, events in checkpoint.starts:
            await self.create(started, events)

    async def get(self, saga_id: str) -> SagaRecord | None:
        record = self._sagas.get(saga_id)
        return _detached(record) if record else None

    async def list(self, query: SagaQuery | None = None) -> builtins.list[SagaRecord]:
        query = query or SagaQuery()
        found = [r for r in self._sagas.values() if matches(r, query, self._starter(r.id))]
        found.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return [_detached(r) for r in found[query.offset : query.offset + query.limit]]

    async def events(self, saga_id: str) -> builtins.list[SagaEvent]:
        return [replace(e) for e in self._events.get(saga_id, [])]

    def _starter(self, saga_id: str) -> str | None:
        history = self._events.get(saga_id, [])
        return history[0].actor if history and history[0].type == EventType.SAGA_STARTED else None

    async def find_events(self, query: EventQuery) -> builtins.list[SagaEvent]:
        found = [
            replace(e)
            for saga_id, history in self._events.items()
            if query.saga_id in (None, saga_id)
            and (query.saga_type is None or self._sagas[saga_id].saga_type == query.saga_type)
            for e in history
            if (query.types is None or e.type in query.types)
            and (query.since is None or e.at >= query.since)
            and (query.actor is None or e.actor == query.actor)
        ]
        found.sort(key=lambda e: (e.at, e.saga_id, e.seq), reverse=True)
        return found[: query.limit]

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
        take_over: bool = True,
    ) -> builtins.list[SagaRecord]:
        types = set(saga_types) if saga_types is not None else None
        ids = set(saga_ids) if saga_ids is not None else None
        excluded = set(exclude_ids)
        claimed: list[SagaRecord] = []
        for record in sorted(self._sagas.values(), key=lambda r: r.created_at):
            if len(claimed) >= limit:
                break
            if types is not None and record.saga_type not in types:
                continue
            if (ids is not None and record.id not in ids) or record.id in excluded:
                continue
            if not is_claimable(record, now) or (not take_over and record.lease_owner):
                continue
            lease_to(record, owner, now, lease_until)
            claimed.append(_detached(record))
        return claimed

    async def claim_due(
        self,
        owner: str,
        *,
        now: datetime,
        lease_until: datetime,
        limit: int,
        saga_types: Iterable[str],
    ) -> builtins.list[SagaRecord]:
        types = set(saga_types)
        due = [
            r
            for r in self._sagas.values()
            if r.status in (SagaStatus.ACTIVE, SagaStatus.WAITING)
            and r.saga_type in types
            and r.next_attempt_at is not None
            and r.next_attempt_at <= now
            and (r.lease_expires_at is None or r.lease_expires_at <= now)
        ]
        due.sort(key=lambda r: r.next_attempt_at or now)
        for record in due[:limit]:
            lease_to(record, owner, now, lease_until)
        return [_detached(r) for r in due[:limit]]

    async def renew(self, owner: str, saga_ids: Iterable[str], lease_until: datetime) -> set[str]:
        lost: set[str] = set()
        for saga_id in saga_ids:
            record = self._sagas.get(saga_id)
            if record is None or record.lease_owner != owner:
                lost.add(saga_id)
            else:
                record.lease_expires_at = lease_until
        return lost

    async def delete(self, saga_id: str) -> bool:
        self._events.pop(saga_id, None)
        self._drop_messages_of(saga_id)
        return self._sagas.pop(saga_id, None) is not None

    async def archive(
        self, *, finished_before: datetime, now: datetime, saga_types: Iterable[str] | None = None
    ) -> int:
        changed = 0
        types = set(saga_types) if saga_types is not None else None
        for record in self._sagas.values():
            if (
                (types is None or record.saga_type in types)
                and record.status in ARCHIVABLE
                and record.archived_at is None
                and record.completed_at is not None
                and record.completed_at < finished_before
            ):
                record.archived_at = now
                record.version += 1
                changed += 1
        return changed

    async def purge(self, *, archived_before: datetime, dry_run: bool = False) -> int:
        doomed = [
            r.id
            for r in self._sagas.values()
            if r.archived_at is not None and r.archived_at < archived_before
        ]
        if not dry_run:
            for saga_id in doomed:
                await self.delete(saga_id)
        return len(doomed)

    async def count_by_status(self) -> dict[SagaStatus, int]:
        counts: dict[SagaStatus, int] = {}
        for record in self._sagas.values():
            counts[record.status] = counts.get(record.status, 0) + 1
        return counts
