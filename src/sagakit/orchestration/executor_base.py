"""What the executor needs around a step: its settings, its checkpoint, timers, holds.

``SagaExecutor`` (``engine.py``) builds on this: the forward and backward paths and the
one attempt routine live there; here are the parts they share that are not about a step.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from typing import Any

from .. import clock
from ..checkpoint import commit, record_error, release, set_status
from ..history import EventSpec, EventType
from ..hooks import SagaHooks
from ..status import Reason, SagaStatus
from ..store.base import SagaStore
from ..store.records import InboxMark, OutboxMessage, SagaRecord, uncount_claim, utcnow
from . import faults
from .definition import Saga
from .step import Retry

log = logging.getLogger("sagakit.engine")


class Unknown(Enum):
    """A value the caller does not know (distinct from ``None``, a known absence)."""

    ACTOR = "unknown actor"


class Flow(Enum):
    """What the executor does after a step's checkpoint."""

    CONTINUE = 1
    STOP = 2  # released to the store: a durable timer or another worker takes it on


@dataclass(slots=True)
class AttemptOutcome:
    """What one attempt of a step or compensation gave (``error`` None: it succeeded)."""

    seconds: float
    output: dict[str, Any] = field(default_factory=dict)
    messages: list[OutboxMessage] = field(default_factory=list)
    error: BaseException | None = None
    #: The failure event to record with the outcome, when ``error`` is set.
    failed: EventSpec = field(default_factory=lambda: EventSpec())
    #: A step stopped by the saga's own deadline (forward only): roll back for timeout.
    saga_timed_out: bool = False


class ExecutorBase:
    """Settings, the checkpoint hook, durable timers and holding a saga for a person."""

    def __init__(
        self,
        store: SagaStore,
        saga: Saga,
        *,
        owner: str,
        hooks: SagaHooks,
        max_inline_delay: float = math.inf,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.store = store
        self.saga = saga
        self.owner = owner
        self.hooks = hooks
        #: Retry waits up to this long are slept in-process; longer ones release the saga.
        self.max_inline_delay = max_inline_delay
        #: Asked between steps; when it says yes the saga is checkpointed and released.
        self.should_stop = should_stop or (lambda: False)
        self._fault = faults.from_environment()
        #: Who started the sagas running here, where the caller said (see ``run``).
        self._starters: dict[str, str | None] = {}

    async def release_unstarted(self, rec: SagaRecord) -> None:
        """Hand the saga back before its next attempt starts (that attempt is not counted)."""
        release(rec)
        uncount_claim(rec)
        await self._commit(rec, [])

    async def _wait_for_timer(self, rec: SagaRecord) -> bool:
        """Sleep until the saga's retry timer is due; False if it should be released instead."""
        if rec.next_attempt_at is None:
            return True
        delay = (rec.next_attempt_at - utcnow()).total_seconds()
        if delay <= 0:
            return True
        if delay > self._inline_limit():
            await self.release_unstarted(rec)
            return False
        await asyncio.sleep(delay)
        return True

    async def _schedule_retry(
        self, rec: SagaRecord, policy: Retry, error: BaseException, event: EventSpec
    ) -> Flow:
        delay = policy.delay(rec.attempt)
        rec.next_attempt_at = utcnow() + timedelta(seconds=delay)
        event["output"] = {"retry_in_s": round(delay, 3)}
        record_error(rec, error)
        inline = delay <= self._inline_limit()
        if inline:
            rec.attempt += 1  # counted before it runs, as a claim would
        else:
            release(rec)
        await self._commit(rec, [event])
        if not inline:
            return Flow.STOP
        await asyncio.sleep(delay)
        return Flow.CONTINUE

    def _inline_limit(self) -> float:
        """The longest retry delay slept here; longer ones release the saga to the store."""
        if clock.current().virtual:
            return 0.0  # a sleep here would not follow the virtual time: keep timers stored
        return self.max_inline_delay

    def _inconsistency(self, rec: SagaRecord) -> str | None:
        """Say what in a loaded saga this definition cannot run from, or ``None``."""
        steps = len(self.saga.steps)
        if rec.attempt < 0:
            return f"its attempt counter is {rec.attempt}"
        top = steps - 1 if rec.status in (SagaStatus.PENDING, SagaStatus.RUNNING) else steps
        if not 0 <= rec.step_index <= top:
            return (
                f"its step index {rec.step_index} is outside the {steps} steps of "
                f"{self.saga.name!r} for a {rec.status.value} saga"
            )
        return None

    async def _hold_changed_definition(self, rec: SagaRecord) -> None:
        stored, current = rec.definition_hash, self.saga.definition_hash
        log.warning(
            "saga %s (%s) was started by a different definition (%s) than this worker's "
            "(%s); holding it as PAUSED/definition_changed instead of resuming it blindly",
            rec.id,
            rec.saga_type,
            stored,
            current,
            extra={"saga_id": rec.id, "saga_type": rec.saga_type},
        )
        await self._hold(
            rec,
            Reason.DEFINITION_CHANGED,
            f"definition changed: saga has {stored}, this code has {current}",
        )

    async def _hold(self, rec: SagaRecord, reason: Reason, why: str) -> None:
        """Pause the saga for a person, uncounting the attempt its claim took."""
        rec.paused_from = rec.status
        set_status(rec, SagaStatus.PAUSED)
        rec.reason = reason
        uncount_claim(rec)
        if reason is Reason.CORRUPT:
            rec.error_type, rec.error_message = "sagakit.corrupt", why
        release(rec)
        await self._commit(rec, [{"type": EventType.SAGA_PAUSED, "reason": why}])

    async def _commit(
        self,
        rec: SagaRecord,
        events: list[EventSpec],
        outbox: list[OutboxMessage] | None = None,
        inbox: list[InboxMark] | None = None,
    ) -> None:
        await commit(self.store, rec, events, outbox, inbox)
        if self._fault is not None:
            self._fault.committed(e["type"] for e in events)
