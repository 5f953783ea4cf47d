"""Records the contract suite writes: a fresh saga, its first event, its next version."""

from __future__ import annotations

from typing import Any

from ..store.records import SagaEvent, SagaRecord, utcnow


def new_saga(saga_id: str, **fields: Any) -> SagaRecord:
    """Return a fresh saga record as a Runtime would create it (version 1, one event)."""
    now = utcnow()
    values: dict[str, Any] = {
        "saga_type": "order",
        "data": {"n": 1, "nested": {"list": [1, "two", None]}},
        "version": 1,
        "last_seq": 1,
        "created_at": now,
        "updated_at": now,
        "definition_hash": "abc123",
        "current_step": "first",
    }
    values.update(fields)
    return SagaRecord(id=saga_id, **values)


def started(record: SagaRecord) -> list[SagaEvent]:
    """Return the ``saga_started`` event of ``record``."""
    return [SagaEvent(saga_id=record.id, seq=1, type="saga_started", actor="tester")]


def advanced(record: SagaRecord, **changes: Any) -> tuple[SagaRecord, int, list[SagaEvent]]:
    """Return a next version of ``record`` with ``changes``, its expected version and event."""
    nxt = record.copy()
    expected = nxt.version
    nxt.version += 1
    nxt.last_seq += 1
    for name, value in changes.items():
        setattr(nxt, name, value)
    event = SagaEvent(saga_id=nxt.id, seq=nxt.last_seq, type="step_completed", step="first")
    return nxt, expected, [event]
