"""Sending an event to the sagas parked at ``wait_for`` steps (``Runtime.send``'s other half).

For each wait on the event, the event's ``payload[match]`` names a mailbox; the sagas
parked there are woken with it, or, if none is, the event is held there for the first
saga that reaches its wait.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..outcomes import Delivery, Outcome
from ..store.base import SagaStore
from .definition import Saga
from .mailbox import Mailboxes, direct_key, mailbox_id
from .wait_step import WaitStep
from .waits import Woken, wait_steps, wake

#: Rounds of "the waiters had all moved on: hold it instead" before giving up.
_ROUNDS = 10


class WaitDelivery:
    """Delivers events to parked sagas of the registered saga types."""

    def __init__(self, store: SagaStore, sagas: Mapping[str, Saga]) -> None:
        self.store = store
        self.sagas = sagas
        self.mailboxes = Mailboxes(store)

    def waits_for(self, event: str) -> list[WaitStep]:
        """Every wait step, of any registered saga, on ``event``."""
        return [
            s for saga in self.sagas.values() for s in wait_steps(saga.steps) if s.event == event
        ]

    async def deliver(
        self, event: str, payload: dict[str, Any], message_id: str, *, saga_id: str | None = None
    ) -> list[Delivery]:
        """Wake the sagas waiting for ``event`` (or hold it); one ``Delivery`` per mailbox."""
        if saga_id is not None:
            boxes = [mailbox_id(event, direct_key(saga_id))]
        else:
            boxes = []
            for step in self.waits_for(event):
                value = payload.get(step.match) if step.match else None
                if isinstance(value, str | int) and not isinstance(value, bool) and value != "":
                    boxes.append(mailbox_id(event, str(value)))
        entry = {"event": event, "data": payload, "message_id": message_id}
        return [await self._deliver_to(mid, event, entry) for mid in dict.fromkeys(boxes)]

    async def _deliver_to(self, mid: str, event: str, entry: dict[str, Any]) -> Delivery:
        for _ in range(_ROUNDS):
            waiters = await self.mailboxes.waiters_or_hold(mid, entry)
            if waiters is None:
                return Delivery(Outcome.NO_WAITER, mid, error=f"mailbox {mid!r} is full")
            if not waiters:
                return Delivery(Outcome.HELD, mid)
            answers = {w: await self._wake(w, event, entry) for w in waiters}
            woken = [w for w, a in answers.items() if a is Woken.YES]
            # the woken stop listening, and so do sagas that moved on (timed out)
            leaving = [w for w, a in answers.items() if a is not Woken.NOT_YET]
            await self.mailboxes.forget(mid, waiters=leaving)
            if woken:
                return Delivery(Outcome.APPLIED, woken[0], state="RUNNING")
            if any(a is Woken.NOT_YET for a in answers.values()):
                # listening but not parked yet: it looks for held events once parked
                if await self.mailboxes.waiters_or_hold(mid, entry, hold=True) is None:
                    return Delivery(Outcome.NO_WAITER, mid, error=f"mailbox {mid!r} is full")
                return Delivery(Outcome.HELD, mid)
        return Delivery(Outcome.NO_WAITER, mid, error=f"no saga in {mid!r} could take it")

    async def _wake(self, saga_id: str, event: str, entry: dict[str, Any]) -> Woken:
        rec = await self.store.get(saga_id)
        saga = self.sagas.get(rec.saga_type) if rec is not None else None
        if rec is None or saga is None or rec.current_step is None:
            return Woken.GONE
        step = next((s for s in saga.steps if s.name == rec.current_step), None)
        if not isinstance(step, WaitStep) or step.event != event:
            return Woken.GONE
        return await wake(self.store, step, saga_id, entry)
