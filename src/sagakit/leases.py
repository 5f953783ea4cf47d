"""Keeps this process's saga leases alive while their sagas run."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from .errors import StoreError, TransactionConflict
from .store.base import SagaStore
from .store.records import SagaRecord, utcnow

log = logging.getLogger("sagakit.leases")


class LeaseKeeper:
    """Renews the leases of the sagas this process runs, every third of the lease length.

    The records it holds are the executors' own objects, so a renewed expiry is what the
    next checkpoint writes.
    """

    def __init__(self, store: SagaStore, owner: str, lease_seconds: float) -> None:
        self.store = store
        self.owner = owner
        self.lease_seconds = lease_seconds
        self._held: dict[str, SagaRecord] = {}
        #: Loop time of the last failed renewal (the database was out of reach), or None.
        self.last_outage: float | None = None
        self._task: asyncio.Task[None] | None = None

    def lease_until(self) -> timedelta:
        """The length of one lease."""
        return timedelta(seconds=self.lease_seconds)

    def hold(self, record: SagaRecord) -> None:
        """Start renewing ``record``'s lease."""
        self._held[record.id] = record

    def drop(self, saga_id: str) -> None:
        """Stop renewing the lease of ``saga_id``."""
        self._held.pop(saga_id, None)

    def outage_recent(self) -> bool:
        """Whether the store was out of reach within the last lease length.

        Every holder's renewals failed then too: a lease that ran out meanwhile belongs,
        most likely, to a live worker that will renew it now, not to a dead one.
        """
        if self.last_outage is None:
            return False
        return asyncio.get_running_loop().time() - self.last_outage < self.lease_seconds

    def noted_outage(self) -> None:
        """Record that the store was just out of reach (seen by a claim or a write)."""
        self.last_outage = asyncio.get_running_loop().time()

    def held_ids(self) -> list[str]:
        """The ids of the sagas this process is running now."""
        return list(self._held)

    def start(self) -> None:
        """Begin renewing in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._renew_forever(), name="sagakit-leases")

    async def stop(self) -> None:
        """Stop renewing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def renew_now(self) -> None:
        """Extend every held lease that is still ours."""
        held = {i: r for i, r in self._held.items() if r.lease_owner == self.owner}
        if not held:
            return
        until = utcnow() + self.lease_until()
        for tries_left in range(3, -1, -1):
            try:
                lost = await self.store.renew(self.owner, held, until)
                break
            except TransactionConflict as e:  # rolled back to break a deadlock: again, now
                if not tries_left:
                    log.warning("could not renew %d leases: %s", len(held), e)
                    return
            except StoreError as e:
                self.last_outage = asyncio.get_running_loop().time()
                log.warning("could not renew %d leases: %s", len(held), e)
                return
        for saga_id, record in held.items():
            if saga_id in lost:
                log.warning("saga %s: lease lost to another worker", saga_id)
            elif record.lease_owner == self.owner:
                record.lease_expires_at = until

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            await self.renew_now()
