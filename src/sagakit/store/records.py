"""Plain records the store ports speak in: sagas, checkpoints, history, outbox and inbox rows."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ..clock import utcnow as utcnow  # re-exported: the stores read this clock
from ..status import Reason, SagaStatus


@dataclass(slots=True)
class SagaRecord:
    """One saga's checkpoint: the row of ``saga_instances``.

    ``version`` grows by one on every write; a write is applied only if the stored version
    is the one the writer read, so a stale writer can never overwrite a newer state.
    """

    id: str
    saga_type: str
    status: SagaStatus = SagaStatus.PENDING
    data: dict[str, Any] = field(default_factory=dict)
    kind: str = "orchestrated"
    reason: Reason | None = None
    current_step: str | None = None
    step_index: int = 0
    attempt: int = 0
    #: Worker processes that died while running the current step (reset when it ends).
    crashes: int = 0
    next_attempt_at: datetime | None = None
    timeout_at: datetime | None = None
    version: int = 0
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    definition_hash: str | None = None
    paused_from: SagaStatus | None = None
    last_seq: int = 0
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    completed_at: datetime | None = None
    archived_at: datetime | None = None
    error_type: str | None = None
    error_message: str | None = None
    error_stack: str | None = None
    #: State machines: schedules, events held until they can apply, faulted events.
    deferred: dict[str, Any] | None = None

    @property
    def context(self) -> dict[str, Any]:
        """The saga's context: its input merged with every completed step's output."""
        return self.data

    @property
    def is_terminal(self) -> bool:
        """Tell whether the saga has finished (until an operator acts)."""
        return self.status.is_terminal

    def copy(self) -> SagaRecord:
        """Return a copy whose ``data`` can be changed without touching this record."""
        clone = SagaRecord(**{name: getattr(self, name) for name in _RECORD_FIELDS})
        clone.data = dict(self.data)
        if self.deferred is not None:  # nested lists and dicts: replaced, never shared
            clone.deferred = {
                k: list(v) if isinstance(v, list) else dict(v) for k, v in self.deferred.items()
            }
        return clone


_RECORD_FIELDS: tuple[str, ...] = tuple(SagaRecord.__dataclass_fields__)


def lease_to(record: SagaRecord, owner: str, now: datetime, lease_until: datetime) -> None:
    """Apply a claim to ``record``: a new lease, a new version, and what the claim costs.

    Claiming a saga whose holder's lease ran out while it was running means that process
    died (or froze) in the middle of it: that is counted in ``crashes``, not as an attempt,
    so a worker killed by one poison saga does not use up its neighbours' retries. Any
    other claim starts the next attempt, counted before it runs.
    """
    # PENDING too: a worker that dies in a saga's first step has written nothing yet, so
    # the row is still PENDING, under that worker's lease
    abandoned = record.lease_owner is not None and record.status in (
        SagaStatus.PENDING,
        SagaStatus.RUNNING,
        SagaStatus.COMPENSATING,
    )
    if abandoned:
        record.crashes += 1
    elif not record.crashes:  # a suspect handed back unstarted resumes the same attempt
        record.attempt += 1
    record.lease_owner = owner
    record.lease_expires_at = lease_until
    record.version += 1
    record.updated_at = now


def uncount_claim(record: SagaRecord) -> None:
    """Undo what ``lease_to`` counted, for a saga handed back before its step started."""
    if not record.crashes:
        record.attempt = max(record.attempt - 1, 0)


@dataclass(slots=True)
class SagaEvent:
    """One entry of a saga's append-only history (``saga_events``)."""

    saga_id: str
    seq: int
    type: str
    step: str | None = None
    attempt: int | None = None
    at: datetime = field(default_factory=utcnow)
    duration_ms: float | None = None
    output: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    actor: str | None = None
    source_ip: str | None = None
    reason: str | None = None


class OutboxState(StrEnum):
    """Where an outbox message is on its way to the broker."""

    #: Written, waiting for the relay (or for its next attempt after a failure).
    PENDING = "pending"
    #: The broker confirmed it.
    PUBLISHED = "published"
    #: It failed every attempt; it waits for ``sagakit outbox retry`` and holds back the
    #: later messages of its saga, so that they are never delivered out of order.
    DEAD = "dead"


def new_message_id() -> str:
    """A message id that stays the same however often the message is re-published."""
    return uuid.uuid4().hex


@dataclass(slots=True)
class OutboxMessage:
    """A message written with a checkpoint, published later by the relay."""

    saga_id: str
    topic: str
    payload: dict[str, Any]
    headers: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utcnow)
    published_at: datetime | None = None
    #: Relay attempts so far (counted when a relay claims it, before it publishes).
    attempts: int = 0
    id: int | None = None
    message_id: str = field(default_factory=new_message_id)
    saga_type: str | None = None
    step: str | None = None
    dead_at: datetime | None = None
    next_attempt_at: datetime | None = None
    claimed_by: str | None = None
    claimed_until: datetime | None = None
    last_error: str | None = None

    @property
    def state(self) -> OutboxState:
        """Pending, published or dead."""
        if self.published_at is not None:
            return OutboxState.PUBLISHED
        return OutboxState.DEAD if self.dead_at is not None else OutboxState.PENDING


@dataclass(slots=True, frozen=True)
class InboxMark:
    """A consumed message, written with the checkpoint it caused: applied once per consumer."""

    consumer: str
    message_id: str


@dataclass(slots=True)
class Checkpoint:
    """One write of one saga: its row at the next version and what goes with it.

    The store writes all of it in one transaction, on the condition that the stored
    version is still ``expected_version``; otherwise nothing is written
    (``ConcurrencyError``). Timers are columns of the row (``next_attempt_at``,
    ``timeout_at``), so they are set and cleared with it.
    """

    record: SagaRecord
    expected_version: int
    events: Sequence[SagaEvent] = ()
    outbox: Sequence[OutboxMessage] = ()
    inbox: Sequence[InboxMark] = ()
    #: New sagas started by this write (a state machine's ``instance.start``), each with
    #: its first events; one whose id exists already is left as it is.
    starts: Sequence[tuple[SagaRecord, Sequence[SagaEvent]]] = ()


@dataclass(slots=True, frozen=True)
class OutboxQuery:
    """Filters for listing outbox messages, newest first; ``None`` means any."""

    state: OutboxState | None = None
    saga_id: str | None = None
    limit: int = 100


@dataclass(slots=True, frozen=True)
class SagaQuery:
    """Filters for listing sagas; every field narrows the result, ``None`` means any."""

    statuses: tuple[SagaStatus, ...] | None = None
    saga_type: str | None = None
    #: ``orchestrated`` or ``state_machine``.
    kind: str | None = None
    #: Only state machine instances in this state (orchestrated sagas: the current step).
    state: str | None = None
    id_contains: str | None = None
    created_before: datetime | None = None
    created_after: datetime | None = None
    updated_before: datetime | None = None
    #: Only sagas whose reason is one of these (``error``, ``timeout``, ``cancelled``...).
    reasons: tuple[Reason, ...] | None = None
    #: Only sagas that finished (completed, compensated or failed) after this time.
    finished_after: datetime | None = None
    #: Only sagas started by this actor (the ``actor`` of their ``saga_started`` event).
    started_by: str | None = None
    include_archived: bool = True
    #: Keyset cursor: only sagas strictly older than this (created_at, id) pair.
    before: tuple[datetime, str] | None = None
    limit: int = 100
    offset: int = 0


@dataclass(slots=True, frozen=True)
class EventQuery:
    """Filters for the audit trail across sagas; every field narrows, ``None`` means any."""

    types: tuple[str, ...] | None = None
    since: datetime | None = None
    saga_type: str | None = None
    actor: str | None = None
    saga_id: str | None = None
    limit: int = 1000
