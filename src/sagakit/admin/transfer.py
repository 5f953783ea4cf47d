"""Moving sagas between stores: JSON Lines export/import and a live copy.

One line per saga: ``{"saga": {...}, "events": [...]}``. Import checks every line before
writing any (``transfer_lines``), writes each saga with its history in one transaction,
and skips ids the target already has, so re-running is safe.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from ..errors import ConfigurationError, StoreError
from ..plain import check_texts, data_problem, describe_problem
from ..status import Reason, SagaStatus
from ..store.base import SagaStore
from ..store.records import SagaEvent, SagaQuery, SagaRecord
from .transfer_lines import BadLine, decode_line, parse_line

_SAGA_FIELDS = [f.name for f in fields(SagaRecord)]
_EVENT_FIELDS = [f.name for f in fields(SagaEvent)]


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


@dataclass(slots=True)
class ImportReport:
    """What an import or copy did: sagas written, already present, and those that failed."""

    imported: int = 0
    present: int = 0
    #: ``(saga id, why)`` for each saga that could not be written; nothing of it was.
    failed: list[tuple[str, str]] = field(default_factory=list)
    #: Sagas not tried because the import stopped at the first failure.
    not_tried: int = 0


async def import_sagas(
    store: SagaStore,
    items: Iterable[tuple[SagaRecord, list[SagaEvent]]],
    progress: Callable[[], None] | None = None,
    *,
    keep_going: bool = False,
) -> ImportReport:
    """Write the sagas the store lacks, each with its history in one transaction.

    A saga the target cannot hold is refused before anything of it is written (naming the
    saga and the field); with ``keep_going`` the others are still written, otherwise the
    import stops there. Either way the report says exactly what was written.
    """
    report = ImportReport()
    pending = list(items)
    for index, (record, events) in enumerate(pending):
        try:
            _check_writable(record, events)
            _, created = await store.create(record, events)
        except (StoreError, ConfigurationError) as e:
            report.failed.append((record.id, str(e)))
            if not keep_going:
                report.not_tried = len(pending) - index - 1
                return report
        else:
            report.imported += created
            report.present += not created
        if progress is not None:
            progress()
    return report


def _check_writable(record: SagaRecord, events: list[SagaEvent]) -> None:
    """Refuse, naming the field, what a store could not hold (e.g. NUL read from SQLite)."""
    problem = data_problem(record.data)
    if problem is not None:
        raise BadLine(describe_problem("data", problem))
    check_texts(
        "",
        id=record.id,
        saga_type=record.saga_type,
        current_step=record.current_step,
        error_message=record.error_message,
        error_stack=record.error_stack,
    )
    for event in events:
        for name in ("output", "error"):
            problem = data_problem(getattr(event, name))
            if problem is not None:
                raise BadLine(describe_problem(f"event {event.seq} {name}", problem))
        check_texts(f"event {event.seq}", reason=event.reason, actor=event.actor)


__all__ = [
    "BadLine",
    "ImportReport",
    "decode_line",
    "import_sagas",
    "iter_sagas",
    "parse_line",
    "saga_line",
]
