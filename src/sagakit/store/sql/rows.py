"""Saga rows as bind parameters and back; a queued write."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, Update, bindparam, update
from sqlalchemy.engine import Row

from ...status import Reason, SagaStatus
from ..records import InboxMark, OutboxMessage, SagaEvent, SagaRecord

#: Columns a checkpoint rewrites; identity columns (id, type, kind, created_at) never change.
_MUTABLE = (
    "status",
    "reason",
    "current_step",
    "step_index",
    "data",
    "attempt",
    "crashes",
    "next_attempt_at",
    "timeout_at",
    "version",
    "lease_owner",
    "lease_expires_at",
    "definition_hash",
    "paused_from",
    "last_seq",
    "updated_at",
    "completed_at",
    "archived_at",
    "error_type",
    "error_message",
    "error_stack",
    "deferred",
)


_EVENT_COLUMNS = (
    "saga_id",
    "seq",
    "type",
    "step",
    "attempt",
    "at",
    "duration_ms",
    "output",
    "error",
    "actor",
    "source_ip",
    "reason",
)


@dataclass(slots=True)
class _Write:
    """One queued checkpoint (or creation) waiting for the next group commit.

    Its row parameters are taken when it is queued, so the caller may go on changing
    the record (the engine replaces ``data`` rather than mutating it).
    """

    saga_id: str
    expected_version: int | None  # None: create
    params: dict[str, Any]
    events: Sequence[SagaEvent]
    outbox: Sequence[OutboxMessage]
    future: asyncio.Future[bool] = field(repr=False)
    columns: tuple[str, ...] = _MUTABLE  # the columns this checkpoint changes
    inbox: Sequence[InboxMark] = ()
    #: Set by the writer: an inbox mark was already recorded, so nothing was written.
    duplicate: bool = False
    #: New saga rows (bind parameters) and their first events, inserted with this write.
    starts: Sequence[tuple[dict[str, Any], Sequence[SagaEvent]]] = ()


def record_params(record: SagaRecord) -> dict[str, Any]:
    """Return the bind parameters of a saga row."""
    return {
        "id": record.id,
        "saga_type": record.saga_type,
        "kind": record.kind,
        "created_at": record.created_at,
        **{name: getattr(record, name) for name in _MUTABLE},
    }


def record_from_row(row: Row[Any]) -> SagaRecord:
    """Build a ``SagaRecord`` from a ``saga_instances`` row."""
    values = dict(row._mapping)
    values["status"] = SagaStatus(values["status"])
    values["reason"] = Reason(values["reason"]) if values["reason"] else None
    values["paused_from"] = SagaStatus(values["paused_from"]) if values["paused_from"] else None
    return SagaRecord(**values)


def checked_record(row: Row[Any]) -> SagaRecord:
    """Build a ``SagaRecord`` a worker can run; ``ValueError`` says what in the row is bad.

    SQLite keeps any value in any column, and an import or a hand edit can put text in a
    counter: such a row must be set aside, not crash every claim that meets it.
    """
    record = record_from_row(row)
    for name in ("version", "attempt", "crashes", "step_index", "last_seq"):
        value = getattr(record, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} is {value!r:.40}, not a whole number >= 0")
    if not isinstance(record.data, dict):
        raise ValueError(f"data is a {type(record.data).__name__}, not a JSON object")
    return record


def event_params(event: SagaEvent) -> dict[str, Any]:
    """Return the bind parameters of a ``saga_events`` row."""
    return {name: getattr(event, name) for name in _EVENT_COLUMNS}


def inbox_params(mark: InboxMark, at: datetime) -> dict[str, Any]:
    """Return the bind parameters of a ``saga_inbox`` row."""
    return {"consumer": mark.consumer, "message_id": mark.message_id, "received_at": at}


#: ``saga_outbox`` columns that are ``OutboxMessage`` fields of the same name (all of them).
_MESSAGE_FIELDS = tuple(OutboxMessage.__dataclass_fields__)


def message_from_row(row: Any) -> OutboxMessage:
    """Build an ``OutboxMessage`` from a ``saga_outbox`` row."""
    values = dict(row._mapping)
    return OutboxMessage(**{name: values[name] for name in _MESSAGE_FIELDS})


def message_params(message: OutboxMessage) -> dict[str, Any]:
    """The bind parameters of a new ``saga_outbox`` row."""
    return {name: getattr(message, name) for name in _MESSAGE_FIELDS if name != "id"}


def plain_batch(batch: Sequence[_Write]) -> bool:
    """Whether no write starts sagas and no saga is in the batch twice.

    A dialect may write such a batch the direct way; started sagas need the general
    path's per-row inserts.
    """
    plain = all(not w.starts for w in batch)
    return plain and len({w.saga_id for w in batch}) == len(batch)


def checkpoint_update(instances: Table, columns: Sequence[str]) -> Update:
    """The checkpoint's ``UPDATE`` of ``columns``, applied only at the version it expects.

    Bind parameters: the columns by name, ``b_id`` and ``b_expected``.
    """
    return (
        update(instances)
        .where(instances.c.id == bindparam("b_id"), instances.c.version == bindparam("b_expected"))
        .values({name: bindparam(name) for name in columns})
    )
