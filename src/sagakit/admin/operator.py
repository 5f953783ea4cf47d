"""Operator actions on a saga: retry, compensate, cancel, pause, resume.

Each is one conditional write with an audit event naming the actor and reason. A saga
in a state where the action makes no sense is refused with its state and what would work.
"""

from __future__ import annotations

from enum import StrEnum

from ..checkpoint import commit, release, set_status
from ..errors import ConcurrencyError, OperatorActionRefused, SagaNotFound
from ..history import EventSpec, EventType
from ..plain import check_texts
from ..status import Reason, SagaStatus
from ..store.base import SagaStore
from ..store.records import SagaRecord, utcnow

_S = SagaStatus


class Action(StrEnum):
    """What an operator can do to a saga."""

    RETRY = "retry"  #: resume a FAILED rollback, or try a waiting step now
    COMPENSATE = "compensate"  #: roll back now
    CANCEL = "cancel"  #: stop going forward and roll back
    PAUSE = "pause"  #: hold it; no worker touches it until resumed
    RESUME = "resume"  #: release a paused saga to the workers


#: Which statuses each action accepts, and what to say when it does not apply.
_ACCEPTS: dict[Action, tuple[frozenset[SagaStatus], str]] = {
    Action.RETRY: (
        frozenset({_S.FAILED, _S.RUNNING, _S.COMPENSATING}),
        "retry applies to FAILED sagas (resumes the rollback) and to sagas waiting on a "
        "retry timer; use resume for a PAUSED saga",
    ),
    Action.COMPENSATE: (
        frozenset({_S.PENDING, _S.RUNNING, _S.WAITING, _S.PAUSED, _S.FAILED}),
        "compensate applies to PENDING, RUNNING, WAITING, PAUSED and FAILED sagas",
    ),
    Action.CANCEL: (
        frozenset({_S.PENDING, _S.RUNNING, _S.WAITING, _S.PAUSED}),
        "cancel applies to sagas that have not finished; a FAILED saga needs retry or compensate",
    ),
    Action.PAUSE: (
        frozenset({_S.PENDING, _S.RUNNING, _S.COMPENSATING}),
        "pause applies to PENDING, RUNNING and COMPENSATING sagas",
    ),
    Action.RESUME: (frozenset({_S.PAUSED}), "resume applies to PAUSED sagas only"),
}


def applicable(record: SagaRecord) -> list[Action]:
    """The actions that make sense for ``record`` now (for buttons and help texts)."""
    found = [a for a in Action if record.status in _ACCEPTS[a][0]]
    if (
        Action.RETRY in found
        and record.status != _S.FAILED
        and (record.lease_owner is not None or record.next_attempt_at is None)
    ):
        found.remove(Action.RETRY)  # being worked on: nothing to retry
    return found


def _refuse(action: Action, record: SagaRecord) -> OperatorActionRefused:
    state = record.status.value + (f" ({record.reason.value})" if record.reason else "")
    return OperatorActionRefused(
        f"cannot {action.value} saga {record.id!r}: it is {state}. {_ACCEPTS[action][1]}"
    )


async def _last_compensation_reason(store: SagaStore, saga_id: str) -> Reason:
    for event in reversed(await store.events(saga_id)):
        if event.type == EventType.COMPENSATION_STARTED and event.reason:
            return Reason(event.reason)
    return Reason.ERROR


async def _apply(store: SagaStore, rec: SagaRecord, action: Action) -> EventType:
    """Change ``rec`` in memory for ``action``; return the event type to record."""
    now = utcnow()
    if rec.reason == Reason.DEFINITION_CHANGED and action is not Action.PAUSE:
        # the operator accepts that the code running now takes this saga on
        rec.definition_hash = None
    if action is Action.RETRY:
        if rec.status == _S.FAILED:
            set_status(rec, _S.COMPENSATING)
            rec.completed_at = None
        elif rec.lease_owner is not None or rec.next_attempt_at is None:
            raise OperatorActionRefused(
                f"cannot retry saga {rec.id!r}: it is {rec.status.value} and a worker "
                f"({rec.lease_owner or 'the next free one'}) is on it; retry applies to FAILED "
                "sagas and to sagas released to a retry timer"
            )
        rec.next_attempt_at = None
    elif action in (Action.COMPENSATE, Action.CANCEL):
        reason = Reason.CANCELLED if action is Action.CANCEL else Reason.COMPENSATE
        if rec.status == _S.PAUSED and rec.paused_from == _S.PENDING:
            set_status(rec, _S.PENDING)  # undo the pause in the table's terms first
        set_status(rec, _S.COMPENSATING)
        rec.reason = reason
        rec.next_attempt_at = None
        rec.completed_at = None
        if rec.step_index == 0:
            set_status(rec, _S.COMPENSATED)
            rec.current_step = None
            rec.completed_at = now
    elif action is Action.PAUSE:
        rec.paused_from = rec.status
        set_status(rec, _S.PAUSED)
        rec.reason = Reason.OPERATOR
        release(rec)
        return EventType.OPERATOR_PAUSE
    elif action is Action.RESUME:
        target = rec.paused_from or _S.RUNNING
        set_status(rec, target)
        rec.reason = (
            await _last_compensation_reason(store, rec.id) if target == _S.COMPENSATING else None
        )
        rec.paused_from = None
        rec.next_attempt_at = None
        release(rec)
        return EventType.OPERATOR_RESUME
    rec.attempt = 0  # an operator's retry or rollback starts with a fresh set of attempts
    rec.crashes = 0
    release(rec)
    return EventType(f"operator_{action.value}")


async def apply_action(
    store: SagaStore,
    saga_id: str,
    action: Action | str,
    *,
    actor: str | None = None,
    reason: str | None = None,
    source_ip: str | None = None,
) -> SagaRecord:
    """Apply ``action`` to the saga, record who did it and why, and return its new state."""
    check_texts("operator action", actor=actor, reason=reason, source_ip=source_ip)
    try:
        action = Action(action)
    except ValueError:
        choices = ", ".join(a.value for a in Action)
        raise OperatorActionRefused(f"unknown action {action!r}; use one of: {choices}") from None
    for _ in range(5):
        rec = await store.get(saga_id)
        if rec is None:
            raise SagaNotFound(f"no saga with id {saga_id!r}")
        if rec.status not in _ACCEPTS[action][0]:
            raise _refuse(action, rec)
        before = rec.status
        event_type = await _apply(store, rec, action)
        events: list[EventSpec] = [
            {
                "type": event_type,
                "step": rec.current_step,
                "actor": actor,
                "source_ip": source_ip,
                "reason": reason,
                "output": {"from": before.value, "to": rec.status.value},
            }
        ]
        if action in (Action.COMPENSATE, Action.CANCEL):
            events.append(
                {"type": EventType.COMPENSATION_STARTED, "reason": rec.reason, "actor": actor}
            )
        if rec.status == _S.COMPENSATED:
            events.append({"type": EventType.SAGA_COMPENSATED, "reason": rec.reason})
        try:
            await commit(store, rec, events)
        except ConcurrencyError:
            continue  # a worker checkpointed meanwhile; decide again on the fresh state
        return rec
    raise ConcurrencyError(f"saga {saga_id!r} kept changing; {action.value} was not applied")
