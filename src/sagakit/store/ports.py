"""The store's ports, one per capability; ``SagaStore`` is all of them together.

Each port has its own part of the shipped contract suite (``sagakit.testing``).
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import TypeVar

from ..status import SagaStatus
from .records import Checkpoint, EventQuery, SagaEvent, SagaQuery, SagaRecord

K = TypeVar("K")


class SagaStatePort(ABC):
    """Saga rows: create, commit checkpoints, read, count, delete."""

    #: Shown in logs and errors; adapters set it with any password removed.
    description: str = "store"

    async def open(self, *, migrate: bool = True) -> None:  # noqa: B027 - optional hook
        """Connect, and create or upgrade the schema when ``migrate`` is true."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the store may be opened again."""

    @abstractmethod
    async def create(
        self, record: SagaRecord, events: Sequence[SagaEvent] = ()
    ) -> tuple[SagaRecord, bool]:
        """Insert a new saga with its first events, unless one with its id exists.

        Return the stored saga and whether this call created it: starting an existing id
        returns that saga untouched (idempotent start).
        """

    @abstractmethod
    async def commit(self, checkpoint: Checkpoint) -> None:
        """Write one checkpoint (row, events, outbox messages, inbox marks) in one transaction.

        Raise ``ConcurrencyError`` if the stored version is not ``checkpoint.expected_version``
        (the row's own ``version`` is that plus one), and ``DuplicateMessage`` if one of its
        inbox marks is already recorded; in both cases nothing is written.
        """

    @abstractmethod
    async def get(self, saga_id: str) -> SagaRecord | None:
        """Return the saga with id ``saga_id``, or ``None``."""

    @abstractmethod
    async def list(self, query: SagaQuery | None = None) -> builtins.list[SagaRecord]:
        """Return sagas matching ``query``, newest first."""

    @abstractmethod
    async def count_by_status(self) -> dict[SagaStatus, int]:
        """Return how many sagas are in each status."""

    @abstractmethod
    async def delete(self, saga_id: str) -> bool:
        """Delete a saga with its history and outbox rows; return whether it existed."""

    async def subscribe(self, callback: Callable[[], None]) -> Callable[[], Awaitable[None]] | None:
        """Call ``callback`` when a saga is started by any process, if the store can tell.

        Return a coroutine function that unsubscribes, or ``None`` (workers then poll).
        """
        return None

    async def count_by_type(self) -> dict[tuple[str, SagaStatus], int]:
        """Return how many sagas of each type are in each status.

        The default pages through every saga; SQL stores answer with one GROUP BY.
        """
        return await self._count_pages(lambda r: (r.saga_type, r.status))

    async def count_by_state(self, saga_type: str) -> dict[tuple[SagaStatus, str | None], int]:
        """Return how many rows of ``saga_type`` are in each (status, current step or state).

        The default pages through that type's rows; SQL stores answer with one GROUP BY.
        """
        return await self._count_pages(lambda r: (r.status, r.current_step), saga_type=saga_type)

    async def count_by_reason(self) -> dict[tuple[SagaStatus, str | None], int]:
        """Return how many sagas are in each (status, reason) pair.

        The default pages through every saga; SQL stores answer with one GROUP BY.
        """
        return await self._count_pages(lambda r: (r.status, r.reason.value if r.reason else None))

    async def _count_pages(
        self, key: Callable[[SagaRecord], K], saga_type: str | None = None
    ) -> dict[K, int]:
        """Count every saga (of ``saga_type``) by ``key``, a page of the listing at a time."""
        counts: dict[K, int] = {}
        before: tuple[datetime, str] | None = None
        while True:
            page = await self.list(SagaQuery(saga_type=saga_type, before=before, limit=1000))
            for record in page:
                counts[key(record)] = counts.get(key(record), 0) + 1
            if len(page) < 1000:
                return counts
            before = (page[-1].created_at, page[-1].id)


class HistoryPort(ABC):
    """The append-only history of every saga."""

    @abstractmethod
    async def events(self, saga_id: str) -> builtins.list[SagaEvent]:
        """Return the saga's history in the order it was written."""

    @abstractmethod
    async def find_events(self, query: EventQuery) -> builtins.list[SagaEvent]:
        """Return events of any saga matching ``query``, newest first (the audit trail)."""


class ClaimPort(ABC):
    """Leases: which worker runs which saga, for how long."""

    @abstractmethod
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
        """Lease up to ``limit`` runnable sagas to ``owner`` and return them.

        Runnable: status ``PENDING``, ``RUNNING`` or ``COMPENSATING``, no live lease, and a
        retry timer that is due (or a saga timeout that passed). Each claimed saga gets
        ``version + 1``, and ``attempt + 1`` (an attempt counts before it runs) unless
        its last holder's lease ran out while it held it: that holder died, which counts
        in ``crashes`` instead (``records.lease_to``). Sagas in
        ``exclude_ids`` (those the claimer is running) are never claimed, even when their
        lease ran out. With ``take_over=False`` only sagas nobody leases are claimed, not
        those whose lease expired (their holder may be alive, cut off by an outage).
        """

    @abstractmethod
    async def claim_due(
        self,
        owner: str,
        *,
        now: datetime,
        lease_until: datetime,
        limit: int,
        saga_types: Iterable[str],
    ) -> builtins.list[SagaRecord]:
        """Lease up to ``limit`` parked rows whose time has come, the earliest first.

        Parked: status ``ACTIVE`` (a state machine instance; its next schedule) or
        ``WAITING`` (a saga at a ``wait_for`` step; its deadline), with
        ``next_attempt_at`` at or before ``now`` and no live lease.
        """

    @abstractmethod
    async def renew(self, owner: str, saga_ids: Iterable[str], lease_until: datetime) -> set[str]:
        """Extend ``owner``'s leases; return the ids whose lease ``owner`` no longer holds."""


class MaintenancePort(ABC):
    """What operators ask of a store: retention, schema revision, pool and location."""

    description: str

    @abstractmethod
    async def archive(
        self, *, finished_before: datetime, now: datetime, saga_types: Iterable[str] | None = None
    ) -> int:
        """Mark COMPLETED and COMPENSATED sagas finished before ``finished_before`` archived.

        FAILED sagas are never archived: they wait for a person. ``saga_types``: only
        these types. Return how many changed.
        """

    @abstractmethod
    async def purge(self, *, archived_before: datetime, dry_run: bool = False) -> int:
        """Delete sagas archived before ``archived_before`` (with their history)."""

    async def schema_revision(self) -> str | None:
        """The schema revision the database is at; ``None`` for stores without a schema."""
        return None

    def pool_numbers(self) -> dict[str, int] | None:
        """The connection pool as ``size``, ``checked_out``, ``overflow``; ``None``: no pool."""
        return None

    @property
    def location(self) -> str:
        """Where the sagas live, without a password: the URL, with its schema if any."""
        return self.description
