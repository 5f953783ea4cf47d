"""Moving sagas between stores: JSON Lines export/import and a live copy.

One line per saga: ``{"saga": {...}, "events": [...]}``. Import checks every line before
writing any, and skips ids the target already has, so re-running is safe.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import fields
from datetime import datetime
from typing import Any

from .errors import ConfigurationError
from .status import Reason, SagaStatus
from .store.base import SagaStore
from .store.records import SagaEvent, SagaQuery, SagaRecord

_DATETIMES = {
    "next_attempt_at",
    "timeout_at",
    "lease_expires_at",
    "created_at",
    "updated_at",
    "completed_at",
    "archived_at",
    "at",
}
_SAGA_FIELDS = [f.name for f in fields(SagaRecord)]
_EVENT_FIELDS = [f.name for f in fields(SagaEvent)]
_REQUIRED = ("id", "saga_type", "status", "data", "version", "created_at", "updated_at")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, SagaStatus | Reason):
        return value.value
    return value


def saga_line(record: SagaRecord, events: Iterable[SagaEvent]) -> str:
    """Render one saga and its history as one JSON line (keys sorted: stable output)."""
    saga = {name: _plain(getattr(record, name)) for name in _SAGA_FIELDS}
    history = [{name: _plain(getattr(e, name)) for name in _EVENT_FIELDS} for e in events]
    return json.dumps({"saga": saga, "events": history}, sort_keys=True, ensure_ascii=False)


class BadLine(ConfigurationError):
    """A line of an import file is not a saga; the message names the line and the field."""


def _parse_time(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise BadLine(f"{where}: {value!r} is not an ISO 8601 time") from None


def parse_line(text: str, number: int) -> tuple[SagaRecord, list[SagaEvent]]:
    """Parse and validate one export line; raise ``BadLine`` naming line and field."""
    where = f"line {number}"
    try:
        item = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadLine(f"{where}: not JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(item, dict) or not isinstance(item.get("saga"), dict):
        raise BadLine(f'{where}: expected an object with a "saga" object and an "events" list')
    saga, events = item["saga"], item.get("events", [])
    missing = [name for name in _REQUIRED if saga.get(name) is None]
    if missing:
        raise BadLine(f"{where}: saga is missing {', '.join(missing)}")
    unknown = set(saga) - set(_SAGA_FIELDS)
    if unknown:
        raise BadLine(f"{where}: saga has unknown fields {sorted(unknown)}")
    if not isinstance(saga["data"], dict):
        raise BadLine(f"{where}: saga.data must be an object")
    values = dict(saga)
    try:
        values["status"] = SagaStatus(saga["status"])
        values["reason"] = Reason(saga["reason"]) if saga.get("reason") else None
        values["paused_from"] = SagaStatus(saga["paused_from"]) if saga.get("paused_from") else None
    except ValueError as e:
        raise BadLine(f"{where}: {e}") from None
    for name in _DATETIMES & set(values):
        values[name] = _parse_time(values[name], f"{where}: saga.{name}")
    record = SagaRecord(**values)
    if not isinstance(events, list):
        raise BadLine(f"{where}: events must be a list")
    history = []
    for i, event in enumerate(events):
        if not isinstance(event, dict) or not {"seq", "type"} <= set(event):
            raise BadLine(f"{where}: events[{i}] needs at least seq and type")
        event_values = {k: v for k, v in event.items() if k in _EVENT_FIELDS}
        event_values["saga_id"] = record.id
        event_values["at"] = _parse_time(event.get("at"), f"{where}: events[{i}].at")
        history.append(SagaEvent(**event_values))
    return record, history


async def iter_sagas(
    store: SagaStore, page: int = 500
) -> AsyncIterator[tuple[SagaRecord, list[SagaEvent]]]:
    """Yield every saga with its history, newest first, a page at a time."""
    before: tuple[datetime, str] | None = None
    while True:
        records = await store.list(SagaQuery(limit=page, before=before))
        for record in records:
            yield record, await store.events(record.id)
        if len(records) < page:
            return
        before = (records[-1].created_at, records[-1].id)


async def import_sagas(
    store: SagaStore,
    items: Iterable[tuple[SagaRecord, list[SagaEvent]]],
    progress: Callable[[], None] | None = None,
) -> tuple[int, int]:
    """Write sagas the store lacks; return (imported, already present)."""
    imported = skipped = 0
    for record, events in items:
        _, created = await store.create(record, events)
        imported += created
        skipped += not created
        if progress is not None:
            progress()
    return imported, skipped
