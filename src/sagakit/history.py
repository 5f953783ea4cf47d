"""The kinds of history event, and the shape of one before it is numbered and written.

Every event in ``saga_events`` has one of these types; building one with a misspelt type
or key is a type error (mypy), not a runtime surprise.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypedDict


class EventType(StrEnum):
    """What happened to a saga; stored as the text value in ``saga_events.type``."""

    SAGA_STARTED = "saga_started"
    STEP_COMPLETED = "step_completed"
    STEP_FAILED = "step_failed"
    COMPENSATION_STARTED = "compensation_started"
    COMPENSATION_COMPLETED = "compensation_completed"
    COMPENSATION_FAILED = "compensation_failed"
    SAGA_COMPLETED = "saga_completed"
    SAGA_COMPENSATED = "saga_compensated"
    SAGA_FAILED = "saga_failed"
    SAGA_TIMED_OUT = "saga_timed_out"
    SAGA_PAUSED = "saga_paused"
    OPERATOR_RETRY = "operator_retry"
    OPERATOR_COMPENSATE = "operator_compensate"
    OPERATOR_CANCEL = "operator_cancel"
    OPERATOR_PAUSE = "operator_pause"
    OPERATOR_RESUME = "operator_resume"
    #: The saga parked at a wait_for step until its event comes.
    SAGA_WAITING = "saga_waiting"
    #: State machines: an event changed the instance (``step`` is the event's name).
    EVENT_APPLIED = "event_applied"
    #: The current state has no handler for the event; the instance is unchanged.
    EVENT_UNHANDLED = "event_unhandled"
    #: The event was acknowledged without a handler, as the machine says.
    EVENT_IGNORED = "event_ignored"
    #: The handler raised past its retries; the event waits for ``sagakit redeliver``.
    EVENT_FAULTED = "event_faulted"
    #: The event was kept until the instance can apply it.
    EVENT_HELD = "event_held"
    #: The instance finished and left the active set.
    INSTANCE_FINALIZED = "instance_finalized"


class EventSpec(TypedDict, total=False):
    """A history event as a writer describes it; the checkpoint numbers and times it."""

    type: EventType
    step: str | None
    attempt: int | None
    duration_ms: float | None
    output: dict[str, Any] | None
    error: dict[str, Any] | None
    actor: str | None
    source_ip: str | None
    reason: str | None
