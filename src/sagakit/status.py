"""Saga statuses, the reasons beside them, and the one table of allowed transitions."""

from __future__ import annotations

from enum import StrEnum

from .errors import InvalidTransition


class SagaStatus(StrEnum):
    """Where a saga is in its life."""

    PENDING = "PENDING"  #: accepted, no step run yet
    RUNNING = "RUNNING"  #: running its steps forward
    COMPENSATING = "COMPENSATING"  #: undoing its completed steps in reverse order
    COMPLETED = "COMPLETED"  #: every step completed (terminal)
    COMPENSATED = "COMPENSATED"  #: every completed step was undone (terminal)
    FAILED = "FAILED"  #: a compensation failed past its retries; a person must act
    PAUSED = "PAUSED"  #: held by an operator or by a changed definition
    ACTIVE = "ACTIVE"  #: a state machine instance, waiting for its next event
    WAITING = "WAITING"  #: parked at a wait_for step until its event (or its deadline)

    @property
    def is_terminal(self) -> bool:
        """Tell whether the saga is finished until an operator acts."""
        return self in TERMINAL


class Reason(StrEnum):
    """Why a saga left the happy path, stored beside its status."""

    ERROR = "error"  #: a step failed past its retries
    TIMEOUT = "timeout"  #: the saga-level timeout passed
    CANCELLED = "cancelled"  #: an operator or caller cancelled it
    COMPENSATE = "compensate"  #: an operator forced a rollback
    OPERATOR = "operator"  #: an operator paused it
    DEFINITION_CHANGED = "definition_changed"  #: the code's step list differs from the saga's
    CORRUPT = "corrupt"  #: its stored row cannot be read or makes no sense; repair it by hand


TERMINAL: frozenset[SagaStatus] = frozenset(
    {SagaStatus.COMPLETED, SagaStatus.COMPENSATED, SagaStatus.FAILED}
)

#: Statuses a worker may claim and advance.
RUNNABLE: frozenset[SagaStatus] = frozenset(
    {SagaStatus.PENDING, SagaStatus.RUNNING, SagaStatus.COMPENSATING}
)

#: Finished statuses whose sagas may be archived and later deleted (not FAILED).
ARCHIVABLE: frozenset[SagaStatus] = frozenset({SagaStatus.COMPLETED, SagaStatus.COMPENSATED})

_S = SagaStatus

#: Every allowed status change. Nothing else in sagakit changes a status.
TRANSITIONS: frozenset[tuple[SagaStatus, SagaStatus]] = frozenset(
    {
        (_S.PENDING, _S.RUNNING),
        (_S.PENDING, _S.COMPENSATING),  # cancelled or timed out before any step ran
        (_S.PENDING, _S.PAUSED),
        (_S.RUNNING, _S.COMPLETED),
        (_S.RUNNING, _S.COMPENSATING),
        (_S.RUNNING, _S.PAUSED),
        (_S.COMPENSATING, _S.COMPENSATED),
        (_S.COMPENSATING, _S.FAILED),
        (_S.COMPENSATING, _S.PAUSED),
        (_S.PAUSED, _S.PENDING),
        (_S.PAUSED, _S.RUNNING),
        (_S.PAUSED, _S.COMPENSATING),
        (_S.FAILED, _S.COMPENSATING),  # operator retry/compensate resumes the rollback
        (_S.ACTIVE, _S.COMPLETED),  # a state machine instance finalized
        (_S.ACTIVE, _S.PAUSED),
        (_S.PAUSED, _S.ACTIVE),
        (_S.RUNNING, _S.WAITING),
        (_S.WAITING, _S.RUNNING),
        (_S.WAITING, _S.COMPENSATING),  # cancelled while waiting
        (_S.WAITING, _S.PAUSED),
        (_S.PAUSED, _S.WAITING),
    }
)


def can_transition(current: SagaStatus, target: SagaStatus) -> bool:
    """Tell whether ``current -> target`` is allowed; staying in a status always is."""
    return current == target or (current, target) in TRANSITIONS


def check_transition(current: SagaStatus, target: SagaStatus) -> None:
    """Raise ``InvalidTransition`` naming both statuses unless the change is allowed."""
    if not can_transition(current, target):
        allowed = sorted(t.value for (f, t) in TRANSITIONS if f == current)
        raise InvalidTransition(
            f"cannot move a saga from {current.value} to {target.value}; "
            f"from {current.value} it can go to: {', '.join(allowed) or 'nothing (terminal)'}"
        )
