"""The write path: every change to a saga goes through here, as one checkpoint.

A checkpoint is the saga row at its next version plus its new history events, the
outbox messages of the step and the inbox marks of the messages it applies, written in one transaction on the condition that the
stored version is still the one the writer read. Statuses change only through
``set_status``, which applies the one transition table. The engine and the operator
actions both write this way.
"""

from __future__ import annotations

import asyncio
import logging
import traceback

from .errors import StoreUnavailable, TransactionConflict
from .history import EventSpec
from .status import SagaStatus, check_transition
from .store.base import SagaStore
from .store.records import Checkpoint, InboxMark, OutboxMessage, SagaEvent, SagaRecord, utcnow

log = logging.getLogger("sagakit.checkpoint")

#: Waits between retries of a checkpoint while the database is unreachable (about a minute).
_STORE_BACKOFF = (0.1, 0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0)
#: Deadlock rollbacks of one checkpoint retried at once before it counts as an outage.
_MAX_CONFLICTS = 20


def describe_error(error: BaseException) -> dict[str, str]:
    """Return the error as stored in history events: type and message."""
    kind = type(error)
    return {"type": f"{kind.__module__}.{kind.__qualname__}", "message": str(error)}


def set_status(record: SagaRecord, status: SagaStatus) -> None:
    """Change ``record``'s status through the transition table (the only way to change it)."""
    check_transition(record.status, status)
    record.status = status


def release(record: SagaRecord) -> None:
    """Give up the lease so any worker may take the saga when it is due."""
    record.lease_owner = None
    record.lease_expires_at = None


def record_error(record: SagaRecord, error: BaseException | None) -> None:
    """Store ``error`` (or clear the stored one) in the saga's error columns."""
    if error is None:
        record.error_type = record.error_message = record.error_stack = None
        return
    described = describe_error(error)
    record.error_type = described["type"]
    record.error_message = described["message"]
    record.error_stack = "".join(traceback.format_exception(error))[-8000:]


async def commit(
    store: SagaStore,
    rec: SagaRecord,
    events: list[EventSpec],
    outbox: list[OutboxMessage] | None = None,
    inbox: list[InboxMark] | None = None,
    starts: list[tuple[SagaRecord, list[SagaEvent]]] | None = None,
) -> None:
    """Write ``rec`` and its new events as one checkpoint, bumping its version.

    ``outbox`` messages are written with it; ``inbox`` marks record the messages this
    checkpoint applies (``DuplicateMessage`` if one was applied before: nothing written);
    ``starts`` are new sagas created with it.

    A lost connection leaves the commit in doubt; retrying is safe because a commit that
    did land makes the retry fail the version check (``ConcurrencyError``) instead of
    writing twice.
    """
    expected = rec.version
    rec.version = expected + 1
    now = utcnow()
    rec.updated_at = now
    rows = []
    for spec in events:
        rec.last_seq += 1
        rows.append(SagaEvent(saga_id=rec.id, seq=rec.last_seq, at=now, **spec))
    checkpoint = Checkpoint(rec, expected, rows, outbox or (), inbox or (), starts or ())
    conflicts = 0
    waits = iter((*_STORE_BACKOFF, None))
    while True:
        try:
            await store.commit(checkpoint)
            return
        except TransactionConflict as e:
            # the server broke a deadlock by rolling us back: nothing was written, go again
            conflicts += 1
            if conflicts > _MAX_CONFLICTS:
                raise
            log.info("saga %s: %s; retrying at once", rec.id, e)
        except StoreUnavailable as e:
            wait = next(waits)
            if wait is None:
                raise
            log.warning("saga %s: store unavailable (%s); retrying in %.1fs", rec.id, e, wait)
            await asyncio.sleep(wait)
