"""``saga.wait_for(event, match=..., timeout=...)``: a step that waits for an event.

The saga parks durably (``WAITING``: no lease, no worker slot) until an event whose
``payload[match]`` equals its ``context[match]`` arrives through ``Runtime.send``; the
payload is merged into the context and the saga goes on. If ``timeout`` passes first, a
worker takes the saga (its ``next_attempt_at`` is the deadline) and runs ``on_timeout``
as the step, or compensates with reason ``timeout``. An event that arrives before the
saga reaches its wait is kept in the mailbox and taken when it gets there.
"""

from __future__ import annotations

from datetime import timedelta
from enum import Enum
from typing import Any

from ..checkpoint import commit, release, set_status
from ..errors import ConcurrencyError, ConfigurationError, DuplicateMessage
from ..history import EventSpec, EventType
from ..status import SagaStatus
from ..store.base import SagaStore
from ..store.records import InboxMark, SagaRecord, utcnow
from .mailbox import Mailboxes, direct_key, mailbox_id
from .step import Step
from .wait_step import WaitStep

#: Where a woken saga keeps the event it was woken by, until its wait step completes.
DELIVERED = "delivered"


def wait_steps(steps: tuple[Step, ...]) -> list[WaitStep]:
    """The wait steps among ``steps``."""
    return [s for s in steps if isinstance(s, WaitStep)]


def mailboxes_of(step: WaitStep, rec: SagaRecord) -> list[str]:
    """The mailboxes a saga at ``step`` listens on: its match value's, and its own."""
    boxes = [mailbox_id(step.event, direct_key(rec.id))]
    if step.match is not None:
        value = rec.data.get(step.match)
        if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
            raise ConfigurationError(
                f"saga {rec.saga_type!r}, {step.name}: waits for {step.event!r} matching "
                f"context[{step.match!r}], but the context has {value!r:.60} there; a step "
                "before the wait must set it (a string or an integer)"
            )
        boxes.insert(0, mailbox_id(step.event, str(value)))
    return boxes


class Woken(Enum):
    """What handing an event to a listening saga did."""

    #: The saga has the event and is runnable again.
    YES = 1
    #: It is at the wait but not parked yet: keep the event, it will look once parked.
    NOT_YET = 2
    #: It has moved on (timed out, cancelled, gone): it no longer listens.
    GONE = 3


async def wake(store: SagaStore, step: WaitStep, saga_id: str, entry: dict[str, Any]) -> Woken:
    """Hand ``entry`` to a saga parked at ``step`` and make it runnable.

    The event is kept in the saga's row (applied once, by its message id); the next
    worker to claim the saga completes the wait step with it.
    """
    rec = await store.get(saga_id)
    if rec is None or rec.current_step != step.name:
        return Woken.GONE
    if rec.status in (SagaStatus.PENDING, SagaStatus.RUNNING):
        return Woken.NOT_YET
    if rec.status != SagaStatus.WAITING:
        return Woken.GONE
    if rec.lease_expires_at is not None and rec.lease_expires_at > utcnow():
        return Woken.GONE  # a worker took it at its deadline: the event came too late
    rec.deferred = {**(rec.deferred or {}), DELIVERED: entry}
    set_status(rec, SagaStatus.RUNNING)
    rec.next_attempt_at = None
    try:
        await commit(store, rec, [], inbox=[InboxMark(rec.id, entry["message_id"])])
    except DuplicateMessage:
        return Woken.YES  # this saga took that message before
    except ConcurrencyError:
        return await wake(store, step, saga_id, entry)  # changed meanwhile: look again
    return Woken.YES


async def park(
    store: SagaStore, mailboxes: Mailboxes, step: WaitStep, rec: SagaRecord
) -> tuple[str, dict[str, Any]] | None:
    """Listen on ``rec``'s mailboxes, park it at ``step`` (WAITING, no lease), look again.

    A send between listening and parking holds its event (the saga is not parked yet),
    so the last look finds it. Return (mailbox, event) found held then (the caller wakes
    the saga with it), else None.
    """
    boxes = mailboxes_of(step, rec)
    for mid in boxes:
        await mailboxes.listen(mid, rec.id)
    set_status(rec, SagaStatus.WAITING)
    release(rec)
    rec.next_attempt_at = (
        utcnow() + timedelta(seconds=step.wait_timeout) if step.wait_timeout else None
    )
    spec: EventSpec = {
        "type": EventType.SAGA_WAITING,
        "step": step.name,
        "reason": f"waiting for {step.event!r}",
    }
    await commit(store, rec, [spec])
    for mid in boxes:
        entry = await mailboxes.first_held(mid)
        if entry is not None:
            return mid, entry
    return None
