"""A new saga's first checkpoint: its row and its ``saga_started`` event, checked."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from .errors import ConfigurationError
from .history import EventType
from .orchestration.definition import Saga
from .orchestration.invoke import ensure_json
from .plain import check_texts, text_problem
from .status import SagaStatus
from .store.records import SagaEvent, SagaRecord, utcnow

#: The longest saga id every store keeps (``saga_instances.id`` is 255 characters).
MAX_ID = 255


def new_record(
    saga: Saga,
    context: Mapping[str, Any] | None,
    saga_id: str | None,
    *,
    owner: str | None = None,
    lease: timedelta | None = None,
) -> SagaRecord:
    """The row of a new saga: ``PENDING``, or ``RUNNING`` leased to ``owner`` for ``lease``.

    ``ConfigurationError`` names what is wrong with the id or the context.
    """
    if saga_id is None:
        saga_id = uuid.uuid4().hex
    elif not isinstance(saga_id, str) or not saga_id or len(saga_id) > MAX_ID:
        raise ConfigurationError(
            f"saga_id must be a non-empty string of at most {MAX_ID} characters, "
            f"got {saga_id!r:.80}"
        )
    elif (why := text_problem(saga_id)) is not None:
        raise ConfigurationError(f"saga_id {saga_id!r:.80} {why}")
    if context is None:
        context = {}
    if not isinstance(context, Mapping):
        raise ConfigurationError(
            f"the context of saga {saga.name!r} must be a dict, got {type(context).__name__}"
        )
    data = dict(context)
    ensure_json(data, f"context of saga {saga.name!r}")
    now = utcnow()
    leased = owner is not None and lease is not None
    return SagaRecord(
        id=saga_id,
        saga_type=saga.name,
        status=SagaStatus.RUNNING if leased else SagaStatus.PENDING,
        data=data,
        current_step=saga.steps[0].name,
        attempt=1 if leased else 0,
        timeout_at=now + timedelta(seconds=saga.timeout) if saga.timeout else None,
        version=1,
        lease_owner=owner if leased else None,
        lease_expires_at=now + lease if leased and lease is not None else None,
        definition_hash=saga.definition_hash,
        last_seq=1,
        created_at=now,
        updated_at=now,
    )


def started_event(record: SagaRecord, actor: str | None, source_ip: str | None) -> SagaEvent:
    """The ``saga_started`` event of ``record``, by ``actor`` from ``source_ip``."""
    check_texts(f"saga {record.id!r:.80}", actor=actor, source_ip=source_ip)
    return SagaEvent(
        saga_id=record.id,
        seq=1,
        type=EventType.SAGA_STARTED,
        at=record.created_at,
        actor=actor,
        source_ip=source_ip,
    )
