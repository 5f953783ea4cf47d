"""Firing a state machine instance's due schedules: the worker's runner for machines.

A schedule is part of its instance's row (``deferred``), with the row's
``next_attempt_at`` set to the earliest one, so any worker finds it after any restart.
Each fires as an event through the same path as a sent message, deduplicated by its id:
a schedule fired twice by two workers is applied once.
"""

from __future__ import annotations

from ..checkpoint import commit, release
from ..store.base import SagaStore
from ..store.records import SagaRecord, utcnow
from .delivery import MachineDelivery
from .event import Event
from .instance import SCHEDULES, due_time


class ScheduleRunner:
    """Fires the due schedules of instances a worker claimed (``Worker``'s ``Runner``)."""

    def __init__(self, store: SagaStore, delivery: MachineDelivery, *, owner: str) -> None:
        self.store = store
        self.delivery = delivery
        self.owner = owner

    async def run(self, record: SagaRecord) -> SagaRecord | None:
        """Fire every schedule of ``record`` that is due, then give up the lease."""
        now = utcnow()
        schedules = (record.deferred or {}).get(SCHEDULES, {})
        due = sorted((due_time(s), name, s) for name, s in schedules.items() if due_time(s) <= now)
        for _, name, stored in due:
            data, message_id = dict(stored.get("data") or {}), f"schedule:{stored['id']}"
            event = Event(name, data, message_id, stored["id"], checked=True)
            await self.delivery.deliver(event, instance_id=record.id, release_owner=self.owner)
        final = await self.store.get(record.id)
        if final is not None and final.lease_owner == self.owner:
            await self.release_unstarted(final)
            final = await self.store.get(record.id)
        return final

    async def release_unstarted(self, record: SagaRecord) -> None:
        """Give the lease back without firing anything."""
        release(record)
        await commit(self.store, record, [])
