"""The writes of one event to one instance: a transition, a hold, an unhandled event, a fault.

Each is one checkpoint of the instance's row (``checkpoint.commit``), version-checked.
``InstanceWrites`` also keeps the rows it wrote last, so the next event for an instance
starts from it without a read; a stale row is refused by the version check and read
again.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from ..checkpoint import commit, describe_error, release, set_status
from ..history import EventSpec, EventType
from ..orchestration.definition import Saga
from ..outcomes import Delivery, Outcome
from ..starting import new_record, started_event
from ..status import Reason, SagaStatus
from ..store.base import SagaStore
from ..store.records import InboxMark, OutboxMessage, SagaEvent, SagaRecord, utcnow
from .definition import Missing, State, StateMachine, Unhandled
from .event import Event
from .instance import FAULTED, HELD, SCHEDULES, Instance, earliest_due

log = logging.getLogger("sagakit.machines")

#: Instance rows each delivery object keeps from its own last writes.
CACHED_INSTANCES = 4096


class InstanceWrites:
    """Reads and writes the rows of one machine's instances."""

    def __init__(self, store: SagaStore, machine: StateMachine, sagas: Mapping[str, Saga]) -> None:
        self.store = store
        self.machine = machine
        self.sagas = sagas
        #: The rows this object last wrote, newest last: an event for one of them starts
        #: from it instead of reading the row. If another writer changed it since, the
        #: version check refuses the write, and the event is applied again from the row.
        self._cache: OrderedDict[str, SagaRecord] = OrderedDict()

    async def _load(self, iid: str) -> SagaRecord | None:
        cached = self._cache.get(iid)
        if cached is not None:
            self._cache.move_to_end(iid)
            return cached.copy()
        return await self.store.get(iid)

    def _remember(self, rec: SagaRecord) -> None:
        self._cache[rec.id] = rec.copy()
        self._cache.move_to_end(rec.id)
        while len(self._cache) > CACHED_INSTANCES:
            self._cache.popitem(last=False)

    async def _write(
        self,
        rec: SagaRecord,
        events: list[EventSpec],
        outbox: list[OutboxMessage] | None = None,
        inbox: list[InboxMark] | None = None,
        starts: list[tuple[SagaRecord, list[SagaEvent]]] | None = None,
    ) -> None:
        """Write one checkpoint of the instance and remember the row it wrote."""
        try:
            await commit(self.store, rec, events, outbox, inbox, starts)
        except BaseException:
            self._cache.pop(rec.id, None)
            raise
        self._remember(rec)

    # -- the writes -----------------------------------------------------------------------

    async def _transition(
        self,
        rec: SagaRecord,
        deferred: dict[str, Any],
        event: Event,
        instance: Instance,
        state: State | None,
        mark: list[InboxMark],
        release_owner: str | None,
    ) -> Delivery:
        before = rec.current_step
        rec.data = instance.data
        rec.current_step = state.name if state is not None else before
        deferred[SCHEDULES] = instance.schedules
        events: list[EventSpec] = [
            {
                "type": EventType.EVENT_APPLIED,
                "step": event.name,
                "output": {"from": before, "to": rec.current_step, "message_id": event.message_id},
            }
        ]
        if instance.finalized:
            set_status(rec, SagaStatus.COMPLETED)
            rec.completed_at = utcnow()
            deferred[SCHEDULES] = {}
            events.append({"type": EventType.INSTANCE_FINALIZED, "step": rec.current_step})
        rec.next_attempt_at = earliest_due(deferred[SCHEDULES])
        rec.deferred = deferred
        if release_owner is not None and rec.lease_owner == release_owner:
            release(rec)
        starts = []
        for start in instance.starts:
            saga = self.sagas[start.saga_type]
            started = new_record(saga, start.context, start.saga_id)
            starts.append((started, [started_event(started, f"machine:{rec.id}", None)]))
        await self._write(rec, events, instance.outbox, mark, starts)
        return Delivery(Outcome.APPLIED, rec.id, rec.current_step, previous=before)

    async def _hold(
        self,
        rec: SagaRecord,
        deferred: dict[str, Any],
        event: Event,
        mark: list[InboxMark],
        *,
        pause: bool,
    ) -> Delivery:
        held = deferred.setdefault(HELD, [])
        if len(held) >= self.machine.hold_limit:
            return Delivery(
                Outcome.NO_INSTANCE,
                rec.id,
                rec.current_step,
                error=f"{rec.id!r} already holds {len(held)} events (hold_limit)",
            )
        held.append({"event": event.name, "data": event.payload, "message_id": event.message_id})
        rec.deferred = deferred
        events: list[EventSpec] = [{"type": EventType.EVENT_HELD, "step": event.name}]
        if pause and rec.status != SagaStatus.PAUSED:
            rec.paused_from = rec.status
            set_status(rec, SagaStatus.PAUSED)
            rec.reason = Reason.DEFINITION_CHANGED
            why = f"state {rec.current_step!r} is not in the definition of {self.machine.name!r}"
            events.append({"type": EventType.SAGA_PAUSED, "reason": why})
        await self._write(rec, events, inbox=mark)
        outcome = Outcome.PAUSED if rec.status == SagaStatus.PAUSED else Outcome.HELD
        return Delivery(outcome, rec.id, rec.current_step)

    async def _unhandled(
        self, rec: SagaRecord, deferred: dict[str, Any], event: Event, mark: list[InboxMark]
    ) -> Delivery:
        ignore = self.machine.unhandled is Unhandled.IGNORE
        rec.deferred = deferred  # a schedule that fired is used up either way
        rec.next_attempt_at = earliest_due(deferred.get(SCHEDULES, {}))
        kind = EventType.EVENT_IGNORED if ignore else EventType.EVENT_UNHANDLED
        why = f"no handler for {event.name!r} in state {rec.current_step!r}"
        spec: EventSpec = {"type": kind, "step": event.name, "reason": why}
        # an unhandled fault is not marked received: the same message may apply after a fix
        await self._write(rec, [spec], inbox=mark if ignore else None)
        outcome = Outcome.IGNORED if ignore else Outcome.UNHANDLED
        return Delivery(outcome, rec.id, rec.current_step, error=None if ignore else why)

    async def _fault(
        self, rec: SagaRecord, deferred: dict[str, Any], event: Event, error: BaseException
    ) -> Delivery:
        described = describe_error(error)
        faulted = deferred.setdefault(FAULTED, [])
        faulted.append(
            {
                "event": event.name,
                "data": event.payload,
                "message_id": event.message_id,
                "error": described,
                "at": utcnow().isoformat(),
            }
        )
        del faulted[: -self.machine.hold_limit]
        rec.deferred = deferred
        rec.next_attempt_at = earliest_due(deferred.get(SCHEDULES, {}))
        spec: EventSpec = {"type": EventType.EVENT_FAULTED, "step": event.name, "error": described}
        await self._write(rec, [spec])
        log.warning(
            "instance %s: handler of %r failed: %s", rec.id, event.name, described["message"]
        )
        message = f"{described['type']}: {described['message']}"
        return Delivery(Outcome.FAULTED, rec.id, rec.current_step, error=message)

    def _missing(self, iid: str, event: Event, policy: Missing) -> Delivery:
        if policy is Missing.IGNORE:
            return Delivery(Outcome.IGNORED, iid)
        return Delivery(
            Outcome.NO_INSTANCE,
            iid,
            error=(
                f"no instance {iid!r} and {event.name!r} does not create one; declare "
                f"{self.machine.name}.event({event.name!r}, missing='hold') to keep such events"
            ),
        )

    def _blank(self, iid: str) -> SagaRecord:
        """A new instance that has taken no event yet (state None)."""
        now = utcnow()
        return SagaRecord(
            id=iid,
            saga_type=self.machine.name,
            kind=StateMachine.kind,
            status=SagaStatus.ACTIVE,
            data={},
            version=1,
            definition_hash=self.machine.definition_hash,
            created_at=now,
            updated_at=now,
        )
