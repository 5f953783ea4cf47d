"""What a Runtime answers and does for callers beyond running sagas: reads and actions.

The ``Runtime`` (``runtime.py``) wires the store and workers; these methods only read
sagas through its store, and apply operator actions through the one write path.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from .admin.operator import Action, apply_action
from .errors import ConfigurationError, SagaNotFound, SagaTimeout
from .status import SagaStatus
from .store.base import SagaStore
from .store.records import SagaEvent, SagaQuery, SagaRecord
from .worker import Worker


class SagaQueries:
    """Read sagas and their history; apply operator actions (retry, cancel, ...)."""

    store: SagaStore
    worker: Worker | None
    owner: str
    poll_interval: float
    _finished: dict[str, asyncio.Event]

    def _require_open(self) -> None:
        raise NotImplementedError

    def _notify(self, record: SagaRecord) -> None:
        raise NotImplementedError

    # -- reading --------------------------------------------------------------------------

    async def wait(self, saga_id: str, timeout: float | None = None) -> SagaRecord:
        """Wait until the saga is terminal (or paused) and return it.

        Raise ``SagaTimeout`` after ``timeout`` seconds; the saga itself goes on.
        """
        self._require_open()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        interval = 0.01
        while True:
            record = await self.store.get(saga_id)
            if record is None:
                raise SagaNotFound(f"no saga with id {saga_id!r}")
            if record.is_terminal or record.status == SagaStatus.PAUSED:
                return record
            if deadline is not None and loop.time() >= deadline:
                raise SagaTimeout(self._still_running(record, timeout))
            waiter = self._finished.setdefault(saga_id, asyncio.Event())
            pause = interval if deadline is None else min(interval, deadline - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), max(pause, 0))
            interval = min(interval * 2, self.poll_interval)

    def _still_running(self, record: SagaRecord, timeout: float | None) -> str:
        message = f"saga {record.id!r} is still {record.status.value} after {timeout}s"
        if self.worker is None:
            message += (
                "; no worker runs in this process (Runtime(workers=0)), so only another "
                "process's worker (`sagakit worker`) can advance it"
            )
        if record.lease_owner and record.lease_owner != self.owner:
            message += f"; leased by {record.lease_owner} until {record.lease_expires_at}"
        return message

    async def get(self, saga_id: str) -> SagaRecord:
        """Return the saga with id ``saga_id``; raise ``SagaNotFound`` if there is none."""
        self._require_open()
        record = await self.store.get(saga_id)
        if record is None:
            raise SagaNotFound(f"no saga with id {saga_id!r}")
        return record

    async def list(
        self,
        *,
        status: SagaStatus | str | Iterable[SagaStatus | str] | None = None,
        saga_type: str | None = None,
        id_contains: str | None = None,
        created_after: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[SagaRecord]:
        """Return sagas, newest first, filtered by status, type, id text and age."""
        self._require_open()
        statuses: tuple[SagaStatus, ...] | None = None
        if status is not None:
            items = [status] if isinstance(status, str | SagaStatus) else list(status)
            try:
                statuses = tuple(SagaStatus(str(s).upper()) for s in items)
            except ValueError:
                valid = ", ".join(s.value for s in SagaStatus)
                raise ConfigurationError(
                    f"status {status!r} is unknown; use one of: {valid}"
                ) from None
        return await self.store.list(
            SagaQuery(
                statuses=statuses,
                saga_type=saga_type,
                id_contains=id_contains,
                created_after=created_after,
                limit=limit,
                offset=offset,
            )
        )

    async def history(self, saga_id: str) -> builtins.list[SagaEvent]:
        """Return the saga's events (its step and compensation timeline) in order."""
        await self.get(saga_id)
        return await self.store.events(saga_id)

    # -- operator actions -----------------------------------------------------------------

    async def act(
        self,
        saga_id: str,
        action: Action | str,
        *,
        actor: str | None = None,
        reason: str | None = None,
        source_ip: str | None = None,
    ) -> SagaRecord:
        """Apply an operator action; the saga is then picked up by a worker."""
        self._require_open()
        record = await apply_action(
            self.store, saga_id, action, actor=actor, reason=reason, source_ip=source_ip
        )
        if record.is_terminal:
            self._notify(record)
        if self.worker is not None:
            self.worker.wake()
        return record

    async def retry(self, saga_id: str, **audit: Any) -> SagaRecord:
        """Resume a FAILED saga's rollback, or try a step waiting on its retry timer now."""
        return await self.act(saga_id, Action.RETRY, **audit)

    async def compensate(self, saga_id: str, **audit: Any) -> SagaRecord:
        """Force a rollback of a pending, running, paused or failed saga."""
        return await self.act(saga_id, Action.COMPENSATE, **audit)

    async def cancel(self, saga_id: str, **audit: Any) -> SagaRecord:
        """Stop a saga going forward and roll back what it did (reason ``cancelled``)."""
        return await self.act(saga_id, Action.CANCEL, **audit)

    async def pause(self, saga_id: str, **audit: Any) -> SagaRecord:
        """Hold a saga; no worker advances it until ``resume``."""
        return await self.act(saga_id, Action.PAUSE, **audit)

    async def resume(self, saga_id: str, **audit: Any) -> SagaRecord:
        """Hand a paused saga back to the workers, in the direction it was going."""
        return await self.act(saga_id, Action.RESUME, **audit)
