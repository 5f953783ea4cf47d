"""The engine's side of ``wait_for`` steps: take an event, park, or time out.

``SagaExecutor`` builds on this. A saga reaching a wait step takes an event held for it
(or one a send handed to its row) and completes the step with it; else it parks
(``waits.park``) and the executor stops. A worker that claims a parked saga after its
deadline runs ``on_timeout`` or compensates it with reason ``timeout``.
"""

from __future__ import annotations

import time
from typing import Any

from ..checkpoint import set_status
from ..errors import ConfigurationError, DuplicateMessage
from ..history import EventSpec
from ..status import Reason, SagaStatus
from ..store.records import InboxMark, OutboxMessage, SagaRecord, utcnow
from .context import StepContext
from .executor_base import ExecutorBase, Flow
from .invoke import invoke, step_output
from .mailbox import Mailboxes
from .step import Step
from .wait_step import WaitStep
from .waits import DELIVERED, Woken, mailboxes_of, park, wake


class WaitingExecutor(ExecutorBase):
    """Runs the wait steps of a saga; the rest of the engine is ``SagaExecutor``."""

    async def _step_completed(
        self,
        rec: SagaRecord,
        step: Step,
        output: dict[str, Any],
        seconds: float,
        messages: list[OutboxMessage],
    ) -> None:
        raise NotImplementedError

    async def _begin_compensation(
        self,
        rec: SagaRecord,
        reason: Reason,
        error: BaseException | None,
        *,
        timed_out: bool = False,
        first_event: EventSpec | None = None,
        actor: str | None = None,
    ) -> None:
        raise NotImplementedError

    @property
    def mailboxes(self) -> Mailboxes:
        """The mailboxes of this executor's store."""
        return Mailboxes(self.store)

    async def _at_wait(self, rec: SagaRecord, step: WaitStep) -> Flow:
        """The saga is at ``step``: complete it with an event, or park it."""
        delivered = (rec.deferred or {}).get(DELIVERED)
        if delivered is not None:
            return await self._received(rec, step, delivered)
        try:
            boxes = mailboxes_of(step, rec)
        except ConfigurationError as e:
            await self._begin_compensation(rec, Reason.ERROR, e)
            return Flow.CONTINUE
        for mid in boxes:
            entry = await self.mailboxes.first_held(mid)
            if entry is None:
                continue
            # the event goes into the saga's row first (once, by its id), then leaves the
            # mailbox: a crash between the two can repeat it, never lose it
            rec.deferred = {**(rec.deferred or {}), DELIVERED: entry}
            try:
                mark = [InboxMark(rec.id, entry["message_id"])]
                await self._commit(rec, [], inbox=mark)
            except DuplicateMessage:
                rec.deferred = {k: v for k, v in (rec.deferred or {}).items() if k != DELIVERED}
                await self.mailboxes.forget(mid, message_id=entry["message_id"], waiters=[])
                continue
            await self.mailboxes.forget(mid, message_id=entry["message_id"], waiters=[])
            return await self._received(rec, step, entry)
        held = await park(self.store, self.mailboxes, step, rec)
        if held is not None:  # it came while the saga parked: take it now
            mid, entry = held
            if await wake(self.store, step, rec.id, entry) is Woken.YES:
                await self.mailboxes.forget(mid, message_id=entry["message_id"], waiters=[rec.id])
        return Flow.STOP

    async def _received(self, rec: SagaRecord, step: WaitStep, entry: dict[str, Any]) -> Flow:
        rest = {k: v for k, v in (rec.deferred or {}).items() if k != DELIVERED}
        rec.deferred = rest or None
        payload = dict(entry.get("data") or {})
        await self._step_completed(rec, step, payload, 0.0, [])
        return Flow.CONTINUE

    async def _wait_expired(self, rec: SagaRecord) -> Flow:
        """A worker claimed a parked saga: its deadline passed (or it was claimed early)."""
        step = self.saga.steps[rec.step_index]
        due = rec.next_attempt_at
        if not isinstance(step, WaitStep) or due is None or utcnow() < due:
            await self.release_unstarted(rec)
            return Flow.STOP
        set_status(rec, SagaStatus.RUNNING)
        rec.next_attempt_at = None
        try:
            boxes = mailboxes_of(step, rec)
        except ConfigurationError:
            boxes = []
        for mid in boxes:
            # an event held while this saga parked, by a process that died before it
            # looked again: it came in time, so it is taken, not timed out
            entry = await self.mailboxes.first_held(mid)
            if entry is not None:
                return await self._at_wait(rec, step)
        for mid in boxes:
            await self.mailboxes.forget(mid, waiters=[rec.id])
        if step.on_timeout is None:
            await self._begin_compensation(rec, Reason.TIMEOUT, None, timed_out=True)
            return Flow.CONTINUE
        ctx = StepContext(
            rec.data, saga_id=rec.id, saga_type=rec.saga_type, step=step.name, attempt=1
        )
        t0 = time.monotonic()
        try:
            result = await invoke(step.on_timeout, ctx, self.saga.timeout_for(step))
            output = step_output(result, f"saga {self.saga.name!r}, on_timeout of {step.name}")
        except Exception as e:
            await self._begin_compensation(rec, Reason.ERROR, e)
            return Flow.CONTINUE
        await self._step_completed(rec, step, output, time.monotonic() - t0, ctx.messages)
        return Flow.CONTINUE
