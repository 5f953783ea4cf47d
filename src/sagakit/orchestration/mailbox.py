"""Mailboxes: where events for ``wait_for`` steps meet the sagas that wait for them.

A mailbox is a row of its own, one per (event, key): ``wait:<event>:<key>``, where the
key is the value of the wait's ``match`` field (or ``@<saga id>`` for events addressed to
one saga). It holds the ids of the sagas parked on it, or, while none is, the events that
arrived early (bounded). Every change is version-checked. A saga listens first, then
parks, then looks for held events again; a send that finds a listener not parked yet
holds its event. So neither a race nor a crash between the steps loses an event: a saga
killed before it parked is run again at its wait once its lease expires.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import Any, TypeVar

from ..checkpoint import commit
from ..errors import ConcurrencyError
from ..status import SagaStatus
from ..store.base import SagaStore
from ..store.records import SagaRecord, utcnow

T = TypeVar("T")

#: The ``saga_type`` and ``kind`` of mailbox rows.
MAILBOX = "sagakit.mailbox"
#: Early events kept per mailbox at most.
HOLD_LIMIT = 100
_MAX_CONFLICTS = 200


def mailbox_id(event: str, key: str) -> str:
    """The mailbox of ``event`` for the match value (or ``@saga id``) ``key``."""
    return f"wait:{event}:{key}"


def direct_key(saga_id: str) -> str:
    """The mailbox key of events addressed to one saga (``rt.send(..., saga_id=...)``)."""
    return f"@{saga_id}"


class Mailboxes:
    """Reads and changes mailbox rows; each change is one version-checked write."""

    def __init__(self, store: SagaStore) -> None:
        self.store = store

    async def _change(self, mid: str, change: Callable[[dict[str, Any]], tuple[bool, T]]) -> T:
        """Apply ``change`` to the mailbox's contents; write if it says it changed them."""
        for _ in range(_MAX_CONFLICTS):
            rec = await self.store.get(mid)
            if rec is None:
                rec, _ = await self.store.create(_blank(mid))
            contents = copy.deepcopy(rec.deferred or {})
            changed, result = change(contents)
            if not changed:
                return result
            rec.deferred = contents
            try:
                await commit(self.store, rec, [])
            except ConcurrencyError:
                await asyncio.sleep(0)
                continue
            return result
        raise ConcurrencyError(f"mailbox {mid!r} kept changing under {_MAX_CONFLICTS} writers")

    async def waiters_or_hold(
        self, mid: str, entry: dict[str, Any], *, hold: bool = False
    ) -> list[str] | None:
        """The sagas listening on ``mid``; if none (or ``hold``), keep ``entry`` there.

        Return the listening saga ids (``[]`` once held), ``None`` if the mailbox is full.
        """

        def change(box: dict[str, Any]) -> tuple[bool, list[str] | None]:
            if box.get("waiters") and not hold:
                return False, list(box["waiters"])
            held = box.setdefault("held", [])
            if any(e["message_id"] == entry["message_id"] for e in held):
                return False, []
            if len(held) >= HOLD_LIMIT:
                return False, None
            held.append(entry)
            return True, []

        return await self._change(mid, change)

    async def listen(self, mid: str, saga_id: str) -> None:
        """Add ``saga_id`` to the sagas listening on ``mid`` (before it parks)."""

        def change(box: dict[str, Any]) -> tuple[bool, None]:
            waiters = box.setdefault("waiters", [])
            if saga_id in waiters:
                return False, None
            waiters.append(saga_id)
            return True, None

        await self._change(mid, change)

    async def first_held(self, mid: str) -> dict[str, Any] | None:
        """The oldest event held in ``mid``, without taking it."""
        rec = await self.store.get(mid)
        held = (rec.deferred or {}).get("held") if rec is not None else None
        return held[0] if held else None

    async def forget(self, mid: str, *, message_id: str | None = None, waiters: list[str]) -> None:
        """Remove a held event (by id) and these waiters from ``mid``."""

        def change(box: dict[str, Any]) -> tuple[bool, None]:
            held = box.get("held") or []
            kept = [e for e in held if e["message_id"] != message_id]
            parked = box.get("waiters") or []
            left = [w for w in parked if w not in waiters]
            box["held"], box["waiters"] = kept, left
            return (len(kept), len(left)) != (len(held), len(parked)), None

        await self._change(mid, change)


def _blank(mid: str) -> SagaRecord:
    now = utcnow()
    return SagaRecord(
        id=mid,
        saga_type=MAILBOX,
        kind="mailbox",
        status=SagaStatus.ACTIVE,
        version=1,
        deferred={},
        created_at=now,
        updated_at=now,
    )
