"""Applying one event to one state machine instance, in one transaction.

Load the instance at version v, run the handler, write data + state + history + outbox
+ schedules + started sagas + the inbox mark where the version is still v. On a conflict
(another process applied an event meanwhile), load again and apply again: no event is
lost or applied twice. The inbox mark (consumer: the instance id) makes a redelivered
message id a no-op.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import inspect
import logging
import random
from collections.abc import Mapping
from typing import Any

from ..errors import ConcurrencyError, ConfigurationError, DuplicateMessage
from ..hooks import SagaHooks
from ..orchestration.definition import Saga
from ..orchestration.invoke import ensure_json
from ..outcomes import Delivery, Outcome
from ..status import SagaStatus
from ..store.base import SagaStore
from ..store.records import InboxMark, utcnow
from .definition import Missing, State, StateMachine
from .event import Event, correlation_key
from .instance import FAULTED, HELD, SCHEDULES, Instance
from .writes import InstanceWrites

log = logging.getLogger("sagakit.machines")

#: Conflicting writers of one instance retried before the send gives up (bounded).
MAX_CONFLICTS = 200


class MachineDelivery(InstanceWrites):
    """Applies events to the instances of one machine."""

    def __init__(
        self,
        store: SagaStore,
        machine: StateMachine,
        sagas: Mapping[str, Saga],
        hooks: SagaHooks | None = None,
    ) -> None:
        super().__init__(store, machine, sagas)
        self.hooks = hooks or SagaHooks()
        #: Version conflicts retried since this object was made (for metrics and benches).
        self.conflicts = 0
        #: One event at a time per instance in this process: tasks of one process queue
        #: instead of racing, so only other processes can cause a version conflict.
        self._turns: dict[str, tuple[asyncio.Lock, int]] = {}

    async def deliver(
        self, event: Event, *, instance_id: str | None = None, release_owner: str | None = None
    ) -> Delivery:
        """Apply ``event`` to its instance; then any held events the new state takes.

        ``release_owner``: a worker firing schedules gives up its lease with the write.
        """
        iid = instance_id or self.machine.instance_id(correlation_key(self.machine, event.payload))
        result = await self._deliver_one(iid, event, release_owner)
        self._observe(event, result)
        while result.outcome is Outcome.APPLIED:
            held = await self._next_held(iid)
            if held is None:
                break
            replayed = await self._deliver_one(iid, held, release_owner)
            self._observe(held, replayed)
            if replayed.outcome is not Outcome.APPLIED:
                break
        return result

    def _observe(self, event: Event, result: Delivery) -> None:
        self.hooks.event_delivered(
            self.machine.name, event.name, result.state, result.outcome.value, result.conflicts
        )

    async def redeliver(self, iid: str, event: Event) -> Delivery:
        """Apply one of the instance's faulted events again (``event.message_id`` names it)."""
        return await self.deliver(
            Event(event.name, event.payload, event.message_id, replay=FAULTED, checked=True),
            instance_id=iid,
        )

    async def _deliver_one(self, iid: str, event: Event, release_owner: str | None) -> Delivery:
        lock, waiting = self._turns.get(iid, (asyncio.Lock(), 0))
        self._turns[iid] = (lock, waiting + 1)
        try:
            async with lock:
                return await self._deliver_in_turn(iid, event, release_owner)
        finally:
            lock, waiting = self._turns[iid]
            if waiting == 1:
                del self._turns[iid]
            else:
                self._turns[iid] = (lock, waiting - 1)

    async def _deliver_in_turn(self, iid: str, event: Event, release_owner: str | None) -> Delivery:
        conflicts = 0
        while True:
            try:
                result = await self._apply(iid, event, release_owner)
                return dataclasses.replace(result, conflicts=conflicts) if conflicts else result
            except DuplicateMessage:
                self._cache.pop(iid, None)
                return Delivery(Outcome.DUPLICATE, iid, conflicts=conflicts)
            except ConcurrencyError:
                self._cache.pop(iid, None)  # what it held was stale: read the row next
                conflicts += 1
                self.conflicts += 1
                if conflicts > MAX_CONFLICTS:
                    raise
                # another process won the race: back off a little, at random, so that the
                # processes do not collide again in lockstep
                await asyncio.sleep(random.uniform(0, 0.002 * min(conflicts, 10)))

    async def _next_held(self, iid: str) -> Event | None:
        """The first held event the instance's current state has a handler for."""
        rec = await self._load(iid)
        if rec is None or rec.status != SagaStatus.ACTIVE:
            return None
        for entry in (rec.deferred or {}).get(HELD, []):
            if self.machine.handler_for(rec.current_step, entry["event"]) is not None:
                return Event(entry["event"], entry["data"], entry["message_id"], replay=HELD)
        return None

    # -- one attempt at one event ---------------------------------------------------------

    async def _apply(self, iid: str, event: Event, release_owner: str | None) -> Delivery:
        machine = self.machine
        rec = await self._load(iid)
        if rec is None:
            policy = machine.missing_policy(event.name)
            if not machine.is_initial(event.name) and policy is not Missing.HOLD:
                return self._missing(iid, event, policy)
            rec, _ = await self.store.create(self._blank(iid))
            self._remember(rec)
        if rec.saga_type != machine.name or rec.kind != StateMachine.kind:
            raise ConfigurationError(
                f"{iid!r} is a {rec.kind} saga of type {rec.saga_type!r}, not an instance of "
                f"state machine {machine.name!r}"
            )
        if rec.status == SagaStatus.COMPLETED:
            return Delivery(Outcome.FINALIZED, iid, rec.current_step)
        deferred = copy.deepcopy(rec.deferred or {})
        if not self._take(deferred, event):
            return Delivery(Outcome.DUPLICATE, iid, rec.current_step)
        # Only an id a caller chose can come again (a fresh one is new by construction, and
        # a commit in doubt is caught by the version check), so only those are marked; a
        # held event was marked when it was held.
        mark = [InboxMark(iid, event.message_id)] if event.checked and event.replay != HELD else []
        unknown = rec.current_step is not None and machine.state(rec.current_step) is None
        handler = None if unknown else machine.handler_for(rec.current_step, event.name)
        # where no transition will be written to catch a repeat, look it up first
        no_transition = handler is None or rec.status == SagaStatus.PAUSED
        if mark and no_transition and await self.store.inbox_seen(mark[0]):
            return Delivery(Outcome.DUPLICATE, iid, rec.current_step)
        if rec.status == SagaStatus.PAUSED or unknown:
            return await self._hold(rec, deferred, event, mark, pause=unknown)
        if handler is None and rec.current_step is None:
            policy = machine.missing_policy(event.name)
            if policy is Missing.HOLD:
                return await self._hold(rec, deferred, event, mark, pause=False)
            return self._missing(iid, event, policy)
        if handler is None and callable(machine.unhandled):
            handler = machine.unhandled
        if handler is None:
            return await self._unhandled(rec, deferred, event, mark)
        instance = Instance(
            id=iid,
            machine=machine.name,
            key=iid.split(":", 1)[1],
            state=rec.current_step,
            data=copy.deepcopy(rec.data),
            event=event.name,
            message_id=event.message_id,
            now=utcnow(),
            schedules=dict(deferred.get(SCHEDULES, {})),
        )
        error = await self._run_handler(handler, instance, event)
        if isinstance(error, BaseException):
            return await self._fault(rec, deferred, event, error)
        return await self._transition(rec, deferred, event, instance, error, mark, release_owner)

    def _take(self, deferred: dict[str, Any], event: Event) -> bool:
        """Remove what fired ``event`` from ``deferred``; False if it is gone (applied)."""
        if event.schedule_id is not None:
            schedules = deferred.setdefault(SCHEDULES, {})
            stored = schedules.get(event.name)
            if stored is None or stored["id"] != event.schedule_id:
                return False  # fired already, cancelled or replaced
            del schedules[event.name]
        if event.replay is not None:
            kept = deferred.get(event.replay, [])
            left = [e for e in kept if e["message_id"] != event.message_id]
            if len(left) == len(kept):
                return False
            deferred[event.replay] = left
        return True

    async def _run_handler(
        self, handler: Any, instance: Instance, event: Event
    ) -> State | BaseException | None:
        """Run ``handler`` under the machine's retry policy; return its state or its error."""
        policy = self.machine.retry
        attempt = 0
        while True:
            attempt += 1
            start = (copy.deepcopy(instance.data), dict(instance.schedules))
            try:
                result = handler(instance, copy.deepcopy(event.payload))
                if inspect.isawaitable(result):
                    result = await result
                return self._checked(instance, result)
            except Exception as e:
                if attempt >= policy.max_attempts or not policy.retryable(e):
                    return e
                instance.data, instance.schedules = start
                instance.outbox.clear()
                instance.starts.clear()
                instance.finalized = False
                await asyncio.sleep(policy.delay(attempt))

    def _checked(self, instance: Instance, result: object) -> State | None:
        machine = self.machine
        where = f"state machine {machine.name!r}, handler of {instance.event!r}"
        if result is not None and (not isinstance(result, State) or result.machine != machine.name):
            raise ConfigurationError(
                f"{where} returned {result!r:.60}; return a state of {machine.name!r} "
                "(from its states(...)) or None to stay"
            )
        ensure_json(instance.data, f"{where}: instance.data")
        for start in instance.starts:
            if start.saga_type not in self.sagas:
                raise ConfigurationError(
                    f"{where} starts saga type {start.saga_type!r}, which is not registered; "
                    "pass it in Runtime(sagas=[...])"
                )
        return result
