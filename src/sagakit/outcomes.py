"""What became of an event sent to a state machine: the answer of ``Runtime.send``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    """What happened to one event."""

    #: The handler ran and its transition was written.
    APPLIED = "applied"
    #: This message id was applied to the instance before; nothing was done again.
    DUPLICATE = "duplicate"
    #: The current state has no handler for it; recorded in the history, nothing changed.
    UNHANDLED = "unhandled"
    #: Acknowledged without a handler, as the machine or the event's policy says.
    IGNORED = "ignored"
    #: Kept until the instance exists, or can take it, and then applied.
    HELD = "held"
    #: No instance for its key, and it does not create one.
    NO_INSTANCE = "no_instance"
    #: The handler raised past its retries; recorded for ``sagakit redeliver``.
    FAULTED = "faulted"
    #: The instance was finalized before the event came.
    FINALIZED = "finalized"
    #: The instance is paused (by an operator or a changed definition); the event is held.
    PAUSED = "paused"
    #: No saga waits for it and nothing holds it (``wait_for`` events).
    NO_WAITER = "no_waiter"

    @property
    def is_fault(self) -> bool:
        """Whether someone should look at it: it did not apply and was not meant to be kept."""
        return self in (Outcome.UNHANDLED, Outcome.NO_INSTANCE, Outcome.FAULTED, Outcome.NO_WAITER)


@dataclass(frozen=True, slots=True)
class Delivery:
    """The result of sending one event: what happened, to which instance, in which state."""

    outcome: Outcome
    instance_id: str
    state: str | None = None
    error: str | None = None
    previous: str | None = None
    conflicts: int = 0

    @property
    def applied(self) -> bool:
        """Whether the event changed the instance now."""
        return self.outcome is Outcome.APPLIED
