"""Runs one saga from its checkpoint: steps forward, retries, timeouts, compensation.

Each step ends in exactly one checkpoint (one transaction: the saga row and its history
events, plus the step's outbox messages). A step may run more than once — a crash after
its side effect and before its checkpoint re-runs it — but its checkpoint is written once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from typing import Any

from ..checkpoint import commit, describe_error, record_error, release, set_status
from ..errors import (
    ConcurrencyError,
    NotSerializable,
    StepFailed,
    StepTimeout,
)
from ..history import EventSpec, EventType
from ..hooks import SagaHooks
from ..status import Reason, SagaStatus
from ..store.base import SagaStore
from ..store.records import OutboxMessage, SagaRecord, uncount_claim, utcnow
from . import faults
from .context import StepContext
from .definition import Retry, Saga, Step
from .invoke import invoke, step_output

log = logging.getLogger("sagakit.engine")


class _Next(Enum):
    CONTINUE = 1
    STOP = 2  # released to the store: a durable timer or another worker takes it on


@dataclass(slots=True)
class _Attempt:
    """What one attempt of a step or compensation gave (``error`` None: it succeeded)."""

    seconds: float
    output: dict[str, Any] = field(default_factory=dict)
    messages: list[OutboxMessage] = field(default_factory=list)
    error: BaseException | None = None
    #: The failure event to record with the outcome, when ``error`` is set.
    failed: EventSpec = field(default_factory=lambda: EventSpec())
    #: A step stopped by the saga's own deadline (forward only): roll back for timeout.
    saga_timed_out: bool = False


class SagaExecutor:
    """Advances sagas of one definition; one instance serves many sagas concurrently."""

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

    async def run(self, record: SagaRecord) -> SagaRecord | None:
        """Advance ``record`` until it is terminal, paused, or waiting on a durable timer.

        Return the last state written, or ``None`` if another writer took the saga over.
        """
        started = time.monotonic()
        try:
            if record.definition_hash != self.saga.definition_hash:
                # None: an operator resumed it under whatever definition runs it now
                if record.status != SagaStatus.PENDING and record.definition_hash is not None:
                    await self._hold_changed_definition(record)
                    return record
                record.definition_hash = self.saga.definition_hash
            problem = self._inconsistency(record)
            if problem is not None:
                log.error(
                    "saga %s (%s): %s; holding it as PAUSED/corrupt for a person to repair",
                    record.id,
                    record.saga_type,
                    problem,
                    extra={"saga_id": record.id, "saga_type": record.saga_type},
                )
                await self._hold(record, Reason.CORRUPT, problem)
                return record
            if record.status == SagaStatus.PENDING:
                set_status(record, SagaStatus.RUNNING)
                record.current_step = self.saga.steps[0].name
            while True:
                if record.status == SagaStatus.RUNNING:
                    step_next = await self._forward(record)
                elif record.status == SagaStatus.COMPENSATING:
                    step_next = await self._backward(record)
                else:
                    break
                if step_next is _Next.STOP:
                    return record
                if self.should_stop() and not record.status.is_terminal:
                    await self.release_unstarted(record)
                    return record
        except ConcurrencyError as e:
            log.warning(
                "saga %s: dropped, another writer changed it (%s)",
                record.id,
                e,
                extra={"saga_id": record.id, "saga_type": record.saga_type},
            )
            return None
        self.hooks.saga_finished(record, time.monotonic() - started)
        return record

    # -- forward --------------------------------------------------------------------------

    async def _forward(self, rec: SagaRecord) -> _Next:
        if rec.timeout_at is not None and utcnow() >= rec.timeout_at:
            await self._begin_compensation(rec, Reason.TIMEOUT, None, timed_out=True)
            return _Next.CONTINUE
        step = self.saga.steps[rec.step_index]
        outcome = await self._attempt(rec, step, compensation=False)
        if isinstance(outcome, _Next):
            return outcome
        if outcome.saga_timed_out:
            await self._begin_compensation(rec, Reason.TIMEOUT, None, timed_out=True)
        elif outcome.error is None:
            await self._step_completed(rec, step, outcome.output, outcome.seconds, outcome.messages)
        else:
            await self._begin_compensation(
                rec, Reason.ERROR, outcome.error, first_event=outcome.failed
            )
        return _Next.CONTINUE

    async def _attempt(
        self, rec: SagaRecord, step: Step, *, compensation: bool
    ) -> _Attempt | _Next:
        """Run one attempt of a step or compensation; schedule its retry if it gets one.

        Return what the attempt gave, or how to go on when it did not run (attempts or
        crashes used up, a durable timer not due) or will be retried.
        """
        policy = self.saga.retry_for(step, compensation=compensation)
        if rec.attempt > policy.max_attempts:
            await self._attempts_exhausted(rec, step, policy, compensation=compensation)
            return _Next.CONTINUE
        if rec.crashes > policy.max_crashes:
            await self._crashed_too_often(rec, step, policy, compensation=compensation)
            return _Next.CONTINUE
        if not await self._wait_for_timer(rec):
            return _Next.STOP
        ctx = StepContext(
            rec.data, saga_id=rec.id, saga_type=rec.saga_type, step=step.name, attempt=rec.attempt
        )
        timeout = self.saga.timeout_for(step, compensation=compensation)
        limit = timeout
        if compensation:
            assert step.compensate is not None
            fn, what = step.compensate, f"compensation of {step.name!r}"
            ctx.idempotency_key = f"{rec.id}:{step.name}:compensation"
        else:
            fn, what = step.action, f"step {step.name!r}"
            if rec.timeout_at is not None:  # the saga's deadline bounds its step too
                left = max((rec.timeout_at - utcnow()).total_seconds(), 0.0)
                limit = left if limit is None else min(limit, left)
        t0 = time.monotonic()
        error: BaseException
        try:
            result = await invoke(fn, ctx, limit)
            rec.crashes = 0  # the step ended with this process alive: it is not the killer
            output = step_output(result, f"saga {self.saga.name!r}, {what}")
        except TimeoutError:
            rec.crashes = 0
            if not compensation and rec.timeout_at is not None and utcnow() >= rec.timeout_at:
                return _Attempt(time.monotonic() - t0, saga_timed_out=True)
            error = StepTimeout(f"{what} ran past its timeout of {timeout}s")
        except Exception as e:
            rec.crashes = 0
            error = e
        else:
            return _Attempt(time.monotonic() - t0, output=output, messages=ctx.messages)
        seconds = time.monotonic() - t0
        will_retry = (
            policy.retryable(error)
            and not isinstance(error, NotSerializable)
            and rec.attempt < policy.max_attempts
        )
        failed_hook = self.hooks.compensation_failed if compensation else self.hooks.step_failed
        failed_hook(rec, step.name, error, will_retry=will_retry)
        failed: EventSpec = {
            "type": EventType.COMPENSATION_FAILED if compensation else EventType.STEP_FAILED,
            "step": step.name,
            "attempt": rec.attempt,
            "duration_ms": seconds * 1000,
            "error": describe_error(error),
        }
        if will_retry:
            return await self._schedule_retry(rec, policy, error, failed)
        return _Attempt(seconds, error=error, failed=failed)

    async def _step_completed(
        self,
        rec: SagaRecord,
        step: Step,
        output: dict[str, Any],
        seconds: float,
        messages: list[OutboxMessage],
    ) -> None:
        steps = self.saga.steps
        attempt = rec.attempt
        rec.data = {**rec.data, **output} if output else rec.data
        rec.step_index += 1
        rec.attempt = 1
        rec.next_attempt_at = None
        record_error(rec, None)
        events: list[EventSpec] = [
            {
                "type": EventType.STEP_COMPLETED,
                "step": step.name,
                "attempt": attempt,
                "duration_ms": seconds * 1000,
                "output": output,
            }
        ]
        if rec.step_index == len(steps):
            set_status(rec, SagaStatus.COMPLETED)
            rec.current_step = None
            rec.completed_at = utcnow()
            release(rec)
            events.append({"type": EventType.SAGA_COMPLETED})
        else:
            rec.current_step = steps[rec.step_index].name
        await self._commit(rec, events, messages)
        self.hooks.step_completed(rec, step.name, seconds)

    # -- backward -------------------------------------------------------------------------

    def _remaining_compensations(self, completed: int) -> int:
        """Skip completed steps that have no compensation; return how many steps remain."""
        steps = self.saga.steps
        while completed > 0 and steps[completed - 1].compensate is None:
            completed -= 1
        return completed

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
        events: list[EventSpec] = [first_event] if first_event else []
        if timed_out:
            events.append({"type": EventType.SAGA_TIMED_OUT, "step": rec.current_step})
        set_status(rec, SagaStatus.COMPENSATING)
        rec.reason = reason
        if error is not None:
            record_error(rec, error)
        rec.attempt = 1
        rec.next_attempt_at = None
        # the saga's own starter is who a rollback is done for: "compensations by user X"
        actor = actor or await self._starter(rec)
        events.append(
            {"type": EventType.COMPENSATION_STARTED, "reason": reason.value, "actor": actor}
        )
        self._advance_compensation(
            rec, self._remaining_compensations(rec.step_index), events, actor
        )
        await self._commit(rec, events)

    async def _starter(self, rec: SagaRecord) -> str | None:
        """The actor who started the saga (read only when a rollback begins)."""
        history = await self.store.events(rec.id)
        return history[0].actor if history and history[0].type == EventType.SAGA_STARTED else None

    def _advance_compensation(
        self,
        rec: SagaRecord,
        remaining: int,
        events: list[EventSpec],
        actor: str | None = None,
    ) -> None:
        rec.step_index = remaining
        if remaining == 0:
            set_status(rec, SagaStatus.COMPENSATED)
            rec.current_step = None
            rec.completed_at = utcnow()
            release(rec)
            events.append(
                {"type": EventType.SAGA_COMPENSATED, "reason": rec.reason, "actor": actor}
            )
        else:
            rec.current_step = self.saga.steps[remaining - 1].name

    async def _backward(self, rec: SagaRecord) -> _Next:
        if rec.step_index == 0:  # nothing left to undo (e.g. resumed by an operator)
            events: list[EventSpec] = []
            self._advance_compensation(rec, 0, events)
            await self._commit(rec, events)
            return _Next.CONTINUE
        step = self.saga.steps[rec.step_index - 1]
        outcome = await self._attempt(rec, step, compensation=True)
        if isinstance(outcome, _Next):
            return outcome
        if outcome.error is not None:
            await self._fail(rec, outcome.error, outcome.failed)
            return _Next.CONTINUE
        attempt = rec.attempt
        output = outcome.output
        rec.data = {**rec.data, **output} if output else rec.data
        rec.attempt = 1
        rec.next_attempt_at = None
        done: list[EventSpec] = [
            {
                "type": EventType.COMPENSATION_COMPLETED,
                "step": step.name,
                "attempt": attempt,
                "duration_ms": outcome.seconds * 1000,
                "output": output or None,
            }
        ]
        self._advance_compensation(rec, self._remaining_compensations(rec.step_index - 1), done)
        await self._commit(rec, done, outcome.messages)
        self.hooks.compensation_completed(rec, step.name, outcome.seconds)
        return _Next.CONTINUE

    async def _fail(self, rec: SagaRecord, error: BaseException, event: EventSpec) -> None:
        set_status(rec, SagaStatus.FAILED)
        record_error(rec, error)
        rec.completed_at = utcnow()
        release(rec)
        log.error(
            "saga %s FAILED: compensation of %s failed past its retries: %s; "
            "a person must look (sagakit retry/compensate)",
            rec.id,
            rec.current_step,
            error,
            extra={"saga_id": rec.id, "saga_type": rec.saga_type, "step": rec.current_step},
        )
        await self._commit(
            rec, [event, {"type": EventType.SAGA_FAILED, "error": describe_error(error)}]
        )

    # -- shared ---------------------------------------------------------------------------

    async def _attempts_exhausted(
        self, rec: SagaRecord, step: Step, policy: Retry, *, compensation: bool
    ) -> None:
        """The last allowed attempt was started but never recorded: its worker was lost."""
        why = (
            f"used all {policy.max_attempts} attempts; the worker running the last one "
            "stopped before recording a result"
        )
        await self._give_up(rec, step, why, rec.attempt - 1, compensation=compensation)

    async def _crashed_too_often(
        self, rec: SagaRecord, step: Step, policy: Retry, *, compensation: bool
    ) -> None:
        """The step killed its worker again while it ran alone: it is the poison, stop it."""
        why = (
            f"stopped its worker process {rec.crashes} times, {rec.crashes - 1} of them "
            f"while it ran alone (Retry.max_crashes={policy.max_crashes}); treated as "
            "failed so that it stops killing workers"
        )
        rec.crashes = 0
        await self._give_up(rec, step, why, rec.attempt, compensation=compensation)

    async def _give_up(
        self, rec: SagaRecord, step: Step, why: str, attempt: int, *, compensation: bool
    ) -> None:
        """Record the step as failed for good: roll back, or FAILED if it was a compensation."""
        what = f"compensation of {step.name!r}" if compensation else f"step {step.name!r}"
        error = StepFailed(f"{what} {why}")
        event: EventSpec = {
            "type": EventType.COMPENSATION_FAILED if compensation else EventType.STEP_FAILED,
            "step": step.name,
            "attempt": attempt,
            "error": describe_error(error),
        }
        if compensation:
            self.hooks.compensation_failed(rec, step.name, error, will_retry=False)
            await self._fail(rec, error, event)
        else:
            self.hooks.step_failed(rec, step.name, error, will_retry=False)
            await self._begin_compensation(rec, Reason.ERROR, error, first_event=event)

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
        if delay > self.max_inline_delay:
            await self.release_unstarted(rec)
            return False
        await asyncio.sleep(delay)
        return True

    async def _schedule_retry(
        self, rec: SagaRecord, policy: Retry, error: BaseException, event: EventSpec
    ) -> _Next:
        delay = policy.delay(rec.attempt)
        rec.next_attempt_at = utcnow() + timedelta(seconds=delay)
        event["output"] = {"retry_in_s": round(delay, 3)}
        record_error(rec, error)
        inline = delay <= self.max_inline_delay
        if inline:
            rec.attempt += 1  # counted before it runs, as a claim would
        else:
            release(rec)
        await self._commit(rec, [event])
        if not inline:
            return _Next.STOP
        await asyncio.sleep(delay)
        return _Next.CONTINUE

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
    ) -> None:
        await commit(self.store, rec, events, outbox)
        if self._fault is not None:
            self._fault.committed(e["type"] for e in events)
