"""Sending events to state machines: ``Runtime.send`` and what it answers.

An event goes to every registered machine that handles it (or says what to do with it
for a missing instance), correlated by each machine's key; or, with ``saga_id``, to one
instance.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigurationError, DefinitionError, SagaNotFound
from .hooks import HookChain
from .machines.definition import StateMachine
from .machines.delivery import MachineDelivery
from .machines.event import Event
from .machines.instance import FAULTED, plain_copy
from .orchestration.definition import Saga
from .orchestration.wait_delivery import WaitDelivery
from .orchestration.waits import wait_steps
from .outcomes import Delivery, Outcome
from .plain import text_problem
from .store.base import SagaStore
from .worker import Worker


@dataclass(frozen=True, slots=True)
class SendResult:
    """What became of one sent event at each machine that took it."""

    event: str
    message_id: str
    deliveries: tuple[Delivery, ...]

    @property
    def outcome(self) -> Outcome:
        """The outcome, or with several machines the first that is a fault (else the first)."""
        faults = [d.outcome for d in self.deliveries if d.outcome.is_fault]
        return faults[0] if faults else self.deliveries[0].outcome

    @property
    def applied(self) -> bool:
        """Whether every machine that took the event applied it."""
        return all(d.applied for d in self.deliveries)


def split_definitions(
    definitions: Iterable[Saga | StateMachine] | Mapping[str, Saga | StateMachine],
) -> tuple[list[Saga], dict[str, StateMachine]]:
    """Split ``Runtime(sagas=[...])`` into orchestrated sagas and state machines."""
    items = definitions.values() if isinstance(definitions, Mapping) else definitions
    sagas: list[Saga] = []
    machines: dict[str, StateMachine] = {}
    for item in items:
        if isinstance(item, StateMachine):
            item.validate()
            if item.name in machines and machines[item.name] is not item:
                raise DefinitionError(f"two state machines are named {item.name!r}")
            machines[item.name] = item
        else:
            sagas.append(item)
    return sagas, machines


class EventSending:
    """``Runtime.send``: deliver an event to the state machines that take it."""

    store: SagaStore
    sagas: dict[str, Saga]
    machines: dict[str, StateMachine]
    worker: Worker | None
    hooks: HookChain
    _deliveries: dict[str, MachineDelivery]

    def _require_open(self) -> None:
        raise NotImplementedError

    def _delivery(self, machine: StateMachine) -> MachineDelivery:
        delivery = self._deliveries.get(machine.name)
        if delivery is None:
            delivery = MachineDelivery(self.store, machine, self.sagas, self.hooks)
            self._deliveries[machine.name] = delivery
        return delivery

    def known_events(self) -> list[str]:
        """Every event a registered machine or wait step takes, sorted."""
        machines = {e for m in self.machines.values() for e in (*m.events, *m.declared_events)}
        waits = {s.event for saga in self.sagas.values() for s in wait_steps(saga.steps)}
        return sorted(machines | waits)

    def machines_for(self, event: str) -> list[StateMachine]:
        """The registered machines that handle ``event`` or declare what to do with it."""
        return [
            m for m in self.machines.values() if event in m.events or event in m.declared_events
        ]

    async def send(
        self,
        event: str,
        data: Mapping[str, Any] | None = None,
        *,
        message_id: str | None = None,
        saga_id: str | None = None,
    ) -> SendResult:
        """Deliver ``event`` with ``data``; return what each machine did with it.

        ``message_id`` makes the send idempotent: an instance that applied that id before
        acknowledges it again without applying it. ``saga_id`` addresses one instance.
        """
        self._require_open()
        if not isinstance(event, str) or not event or text_problem(event) is not None:
            raise ConfigurationError(f"event must be a non-empty string, got {event!r:.60}")
        if message_id is not None and (
            not isinstance(message_id, str) or not message_id or len(message_id) > 200
        ):
            raise ConfigurationError(
                f"message_id must be a non-empty string of at most 200 characters, "
                f"got {message_id!r:.60}"
            )
        payload = plain_copy(data, f"the data of event {event!r}")
        sent = Event(event, payload)
        if message_id is not None:
            sent = Event(event, payload, message_id, checked=True)
        waits = WaitDelivery(self.store, self.sagas)
        deliveries: list[Delivery] = []
        if saga_id is not None:
            record = await self.store.get(saga_id)
            if record is not None and record.kind == "orchestrated":
                if not waits.waits_for(event):
                    raise ConfigurationError(
                        f"saga {saga_id!r} has no wait_for({event!r}) step to take the event"
                    )
                deliveries += await waits.deliver(event, payload, sent.message_id, saga_id=saga_id)
            else:
                machine = await self._machine_of(saga_id)
                deliveries.append(await self._delivery(machine).deliver(sent, instance_id=saga_id))
        else:
            chosen = self.machines_for(event)
            if not chosen and not waits.waits_for(event):
                raise ConfigurationError(
                    f"no registered state machine or wait_for step takes event {event!r} "
                    f"(events: {', '.join(self.known_events()) or 'none'}); pass its "
                    "definition in Runtime(sagas=[...])"
                )
            for machine in chosen:
                deliveries.append(await self._delivery(machine).deliver(sent))
            deliveries += await waits.deliver(event, payload, sent.message_id)
            if not deliveries:
                deliveries.append(
                    Delivery(
                        Outcome.NO_WAITER,
                        event,
                        error=f"no saga waits for {event!r} with a match value in this data",
                    )
                )
        if self.worker is not None:
            self.worker.wake()  # a handler may have started sagas or set a schedule
        return SendResult(event, sent.message_id, tuple(deliveries))

    async def redeliver(self, saga_id: str) -> list[Delivery]:
        """Apply an instance's faulted events again, oldest first; return what happened."""
        self._require_open()
        machine = await self._machine_of(saga_id)
        delivery = self._delivery(machine)
        record = await self.store.get(saga_id)
        assert record is not None
        faulted = list((record.deferred or {}).get(FAULTED, []))
        results = []
        for entry in faulted:
            results.append(
                await delivery.redeliver(
                    saga_id, Event(entry["event"], entry["data"], entry["message_id"])
                )
            )
        return results

    async def _machine_of(self, saga_id: str) -> StateMachine:
        record = await self.store.get(saga_id)
        if record is None:
            raise SagaNotFound(f"no saga or instance with id {saga_id!r}")
        machine = self.machines.get(record.saga_type)
        if record.kind != StateMachine.kind or machine is None:
            raise ConfigurationError(
                f"{saga_id!r} is a {record.kind} saga of type {record.saga_type!r}, not an "
                "instance of a registered state machine"
            )
        return machine
