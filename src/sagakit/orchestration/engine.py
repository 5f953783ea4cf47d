"""Runs one saga from its checkpoint: steps forward, retries, timeouts, compensation.

Each step ends in exactly one checkpoint (one transaction: the saga row and its history
events, plus the step's outbox messages). A step may run more than once — a crash after
its side effect and before its checkpoint re-runs it — but its checkpoint is written once.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ..checkpoint import describe_error, record_error, release, set_status
from ..errors import (
    ConcurrencyError,
    NotSerializable,
    StepFailed,
    StepTimeout,
)
from ..history import EventSpec, EventType
from ..quarantine import DEATHS_BEFORE_ALONE
from ..status import Reason, SagaStatus
from ..store.records import OutboxMessage, SagaRecord, utcnow
from .context import StepContext
from .executor_base import AttemptOutcome, Flow, Unknown
from .invoke import invoke, step_output
from .step import Retry, Step
from .wait_engine import WaitingExecutor
from .wait_step import WaitStep

log = logging.getLogger("sagakit.engine")


class SagaExecutor(WaitingExecutor):
    """Advances sagas of one definition; one instance serves many sagas concurrently."""

    async def run(
        self, record: SagaRecord, *, started_by: str | Unknown | None = Unknown.ACTOR
    ) -> SagaRecord | None:
        """Advance ``record`` until it is terminal, paused, or waiting on a durable timer.

        Return the last state written, or ``None`` if another writer took the saga over.
        ``started_by``: who started the saga, where the caller knows (it just wrote its
        first event), so a rollback need not read the history to name them.
        """
        started = time.monotonic()
        if started_by is not Unknown.ACTOR:
            self._starters[record.id] = started_by
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
                elif record.status == SagaStatus.WAITING:
                    step_next = await self._wait_expired(record)
                else:
                    break
                if step_next is Flow.STOP:
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
        finally:
            self._starters.pop(record.id, None)
        self.hooks.saga_finished(record, time.monotonic() - started)
        return record

    # -- forward --------------------------------------------------------------------------

    async def _forward(self, rec: SagaRecord) -> Flow:
        if rec.timeout_at is not None and utcnow() >= rec.timeout_at:
            await self._begin_compensation(rec, Reason.TIMEOUT, None, timed_out=True)
            return Flow.CONTINUE
        step = self.saga.steps[rec.step_index]
        if isinstance(step, WaitStep):
            return await self._at_wait(rec, step)
        outcome = await self._attempt(rec, step, compensation=False)
        if isinstance(outcome, Flow):
            return outcome
        if outcome.saga_timed_out:
            await self._begin_compensation(rec, Reason.TIMEOUT, None, timed_out=True)
        elif outcome.error is None:
            await self._step_completed(rec, step, outcome.output, outcome.seconds, outcome.messages)
        else:
            await self._begin_compensation(
                rec, Reason.ERROR, outcome.error, first_event=outcome.failed
            )
        return Flow.CONTINUE

    async def _attempt(
        self, rec: SagaRecord, step: Step, *, compensation: bool
    ) -> AttemptOutcome | Flow:
        """Run one attempt of a step or compensation; schedule its retry if it gets one.

        Return what the attempt gave, or how to go on when it did not run (attempts or
        crashes used up, a durable timer not due) or will be retried.
        """
        policy = self.saga.retry_for(step, compensation=compensation)
        if rec.attempt > policy.max_attempts:
            await self._attempts_exhausted(rec, step, policy, compensation=compensation)
            return Flow.CONTINUE
        if rec.crashes - DEATHS_BEFORE_ALONE >= policy.max_crashes:
            await self._crashed_too_often(rec, step, policy, compensation=compensation)
            return Flow.CONTINUE
        if not await self._wait_for_timer(rec):
            return Flow.STOP
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
                return AttemptOutcome(time.monotonic() - t0, saga_timed_out=True)
            error = StepTimeout(f"{what} ran past its timeout of {timeout}s")
        except Exception as e:
            rec.crashes = 0
            error = e
        else:
            return AttemptOutcome(time.monotonic() - t0, output=output, messages=ctx.messages)
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
        return AttemptOutcome(seconds, error=error, failed=failed)

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
        if rec.id in self._starters:
            return self._starters[rec.id]
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

    async def _backward(self, rec: SagaRecord) -> Flow:
        if rec.step_index == 0:  # nothing left to undo (e.g. resumed by an operator)
            events: list[EventSpec] = []
            self._advance_compensation(rec, 0, events)
            await self._commit(rec, events)
            return Flow.CONTINUE
        step = self.saga.steps[rec.step_index - 1]
        outcome = await self._attempt(rec, step, compensation=True)
        if isinstance(outcome, Flow):
            return outcome
        if outcome.error is not None:
            await self._fail(rec, outcome.error, outcome.failed)
            return Flow.CONTINUE
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
        return Flow.CONTINUE

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
            f"stopped its worker process {rec.crashes} times, "
            f"{rec.crashes - DEATHS_BEFORE_ALONE} of them while it ran alone (Retry.max_crashes={policy.max_crashes}); treated as "
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
