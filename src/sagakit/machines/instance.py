"""What a state machine handler sees: the instance's data, and what it may ask for.

Everything a handler asks for (messages, schedules, orchestrated sagas, finalizing) is
collected here and written with the event's transaction, or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..errors import ConfigurationError
from ..orchestration.invoke import ensure_json
from ..store.records import OutboxMessage

#: Keys of ``SagaRecord.deferred``: timers, events kept until they can apply, faults.
SCHEDULES, HELD, FAULTED = "schedules", "held", "faulted"


def plain_copy(values: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    """A copy of ``values`` that every store can hold; ``NotSerializable`` names the part."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise ConfigurationError(f"{where} must be a dict, got {type(values).__name__}")
    copy = dict(values)
    ensure_json(copy, where)
    return copy


@dataclass(slots=True)
class Start:
    """An orchestrated saga a handler starts, created with the event's transaction."""

    saga_type: str
    context: dict[str, Any]
    saga_id: str


@dataclass(slots=True)
class Instance:
    """One instance of a state machine, as a handler sees it.

    ``data`` is the instance's JSON data, persisted with the transition. ``event`` is the
    name of the event being handled and ``message_id`` its id.
    """

    id: str
    machine: str
    key: str
    state: str | None
    data: dict[str, Any]
    event: str
    message_id: str
    now: datetime
    #: The instance's schedules (name -> {"due": iso time, "data": {...}, "id": ...}).
    schedules: dict[str, dict[str, Any]] = field(default_factory=dict)
    outbox: list[OutboxMessage] = field(default_factory=list)
    starts: list[Start] = field(default_factory=list)
    finalized: bool = False

    def publish(
        self, topic: str, payload: Mapping[str, Any], *, headers: Mapping[str, Any] | None = None
    ) -> None:
        """Send ``payload`` to ``topic`` through the outbox, with this event's transaction."""
        where = f"state machine {self.machine!r}, {self.event!r}: publish({topic!r})"
        if not isinstance(topic, str) or not topic:
            raise ConfigurationError(f"{where}: the topic must be a non-empty string")
        body = plain_copy(payload, where)
        self.outbox.append(
            OutboxMessage(
                saga_id=self.id,
                topic=topic,
                payload=body,
                headers=dict(headers or {}),
                saga_type=self.machine,
                step=self.event,
                # the same event applied again (after a conflict) publishes the same id
                message_id=f"{self.id}:{self.message_id}:{len(self.outbox)}",
            )
        )

    def schedule(
        self, event: str, *, after: float | timedelta, data: Mapping[str, Any] | None = None
    ) -> None:
        """Deliver ``event`` to this instance ``after`` seconds; scheduling again replaces."""
        seconds = after.total_seconds() if isinstance(after, timedelta) else after
        if not isinstance(seconds, int | float) or seconds < 0 or seconds != seconds:
            raise ConfigurationError(
                f"state machine {self.machine!r}: schedule({event!r}, after=...) needs "
                f"seconds >= 0 or a timedelta, got {after!r}"
            )
        body = plain_copy(data, f"schedule({event!r}) data")
        due = self.now + timedelta(seconds=seconds)
        self.schedules[event] = {"due": due.isoformat(), "data": body, "id": uuid.uuid4().hex}

    def unschedule(self, event: str) -> None:
        """Cancel the schedule of ``event``, if there is one."""
        self.schedules.pop(event, None)

    def start(
        self,
        saga_type: str,
        context: Mapping[str, Any] | None = None,
        *,
        saga_id: str | None = None,
    ) -> str:
        """Start an orchestrated saga with this event's transaction; return its id."""
        chosen = saga_id or f"{self.id}:{saga_type}:{self.message_id}"
        body = plain_copy(context, f"start({saga_type!r}) context")
        self.starts.append(Start(saga_type, body, chosen))
        return chosen

    def finalize(self) -> None:
        """End the instance: it leaves the active set and is archived like a finished saga."""
        self.finalized = True


def due_time(schedule: Mapping[str, Any]) -> datetime:
    """When a stored schedule is due."""
    return datetime.fromisoformat(schedule["due"])


def earliest_due(schedules: Mapping[str, Mapping[str, Any]]) -> datetime | None:
    """The time the first of ``schedules`` is due, or None."""
    return min((due_time(s) for s in schedules.values()), default=None)
