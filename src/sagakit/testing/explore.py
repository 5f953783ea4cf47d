"""``explore(saga, context)``: run a saga once per failure point and check what it promises.

The points: a clean run; each step failing for good, and failing once after it ran (so
it is retried); each compensation failing once and for good (while the last step fails);
and a crash of the process around each step: after
the step's side effect but before its checkpoint, and right after its checkpoint, each
followed by recovery from the store as a new worker would do it. Every run is checked:
it ends terminal; exactly the completed steps are compensated, in reverse order; a step
runs again at most once after a crash, with the same ``idempotency_key``; a run that
completes ends with the clean run's context. A user invariant ``check(run)`` adds what
the saga itself must keep (e.g. "the ledger balances").

Runs use the memory store (or ``url``) with retry delays cut to zero, so twenty points
take a fraction of a second.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ..hooks import SagaHooks
from ..orchestration.definition import Saga
from ..orchestration.engine import SagaExecutor
from ..orchestration.step import Retry, Step, StepFunction
from ..status import SagaStatus
from ..store.base import SagaStore
from ..store.memory import MemoryStore
from ..store.records import Checkpoint, SagaEvent, SagaRecord, utcnow
from ..store.urls import open_store


class SimulatedCrash(BaseException):
    """The process "dies" here: not an ``Exception``, so no step handler catches it."""


class InjectedFailure(Exception):
    """The failure ``explore`` injects into a step or compensation."""


@dataclass(slots=True)
class Call:
    """One call of a step or compensation during a run."""

    step: str
    compensation: bool
    idempotency_key: str


@dataclass(slots=True)
class Run:
    """One explored run: its failure point, what it called, how it ended, what broke."""

    point: str
    final: SagaRecord | None
    history: list[SagaEvent]
    calls: list[Call]
    problems: list[str] = field(default_factory=list)

    @property
    def status(self) -> SagaStatus | None:
        """The run's end status (None: it never ended)."""
        return self.final.status if self.final else None

    def steps_run(self) -> list[str]:
        """The steps called forward, in order (a re-run appears twice)."""
        return [c.step for c in self.calls if not c.compensation]

    def compensations_run(self) -> list[str]:
        """The steps whose compensation was called, in order."""
        return [c.step for c in self.calls if c.compensation]


@dataclass(slots=True)
class Report:
    """Every explored run; ``assert_ok()`` fails with a table of the broken ones."""

    runs: list[Run]

    @property
    def failures(self) -> list[Run]:
        """The runs where something the saga promises did not hold."""
        return [r for r in self.runs if r.problems]

    def table(self) -> str:
        """Each run as a line: point, end status, and what broke (or ok)."""
        width = max((len(r.point) for r in self.runs), default=5)
        lines = [f"{'point'.ljust(width)}  {'end'.ljust(12)}  result"]
        for r in self.runs:
            end = r.status.value if r.status else "(never)"
            lines.append(
                f"{r.point.ljust(width)}  {end.ljust(12)}  {'; '.join(r.problems) or 'ok'}"
            )
        return "\n".join(lines)

    def assert_ok(self) -> None:
        """Raise ``AssertionError`` with the table if any run broke a promise."""
        if self.failures:
            raise AssertionError(
                f"{len(self.failures)} of {len(self.runs)} failure points broke a promise:\n"
                + self.table()
            )


@dataclass(frozen=True, slots=True)
class _Point:
    name: str
    fail_step: str | None = None
    compensation: str | None = None
    compensation_fails: int = 0  # how often; a large number: for good
    crash_before_checkpoint_of: str | None = None
    crash_after_checkpoint_of: str | None = None
    #: The step runs, then fails once (its effect done, the call seen as failed): retried.
    flaky_step: str | None = None


def _points(saga: Saga) -> list[_Point]:
    steps = saga.steps
    points = [_Point("clean run")]
    points += [_Point(f"step {s.name} fails", fail_step=s.name) for s in steps]
    points += [
        _Point(f"step {s.name} fails once after running", flaky_step=s.name)
        for s in steps
        if (s.retry or saga.retry or Retry()).max_attempts > 1
    ]
    last = steps[-1].name
    for s in steps[:-1]:
        if s.compensate is not None:
            points.append(_Point(f"undo {s.name} fails once", last, s.name, 1))
            points.append(_Point(f"undo {s.name} fails for good", last, s.name, 10**6))
    for s in steps:
        points.append(_Point(f"crash in {s.name}", crash_before_checkpoint_of=s.name))
        points.append(_Point(f"crash after {s.name}", crash_after_checkpoint_of=s.name))
    return points


def _fast(policy: Retry | None) -> Retry | None:
    return None if policy is None else dataclasses.replace(policy, initial=0.0, jitter=0.0)


class _Rigged:
    """The saga with its steps wrapped: calls recorded, the point's failure injected."""

    def __init__(self, saga: Saga, point: _Point) -> None:
        self.point = point
        self.calls: list[Call] = []
        self.crashed = False
        self.undo_failures = 0
        base = saga.retry or Retry()
        self.saga = Saga(saga.name, timeout=saga.timeout, retry=_fast(base))
        for step in saga.steps:
            self.saga.add(
                Step(
                    step.name,
                    self._wrap(step, step.action, compensation=False),
                    self._wrap(step, step.compensate, compensation=True)
                    if step.compensate
                    else None,
                    timeout=step.timeout,
                    retry=_fast(step.retry),
                    compensation_retry=_fast(step.compensation_retry),
                    compensation_timeout=step.compensation_timeout,
                )
            )

    def _wrap(self, step: Step, fn: StepFunction | None, *, compensation: bool) -> StepFunction:
        assert fn is not None
        point = self

        async def rigged(ctx: Any) -> Any:
            point.calls.append(Call(step.name, compensation, ctx.idempotency_key))
            p = point.point
            undo_fails = compensation and p.compensation == step.name
            if undo_fails and point.undo_failures < p.compensation_fails:
                point.undo_failures += 1
                raise InjectedFailure(f"undo {step.name} failed (injected)")
            if not compensation and p.fail_step == step.name:
                raise InjectedFailure(f"step {step.name} failed (injected)")
            result = fn(ctx)
            if inspect.isawaitable(result):
                result = await result
            if not compensation and p.crash_before_checkpoint_of == step.name and not point.crashed:
                point.crashed = True
                raise SimulatedCrash(f"crash after {step.name} ran, before its checkpoint")
            if not compensation and p.flaky_step == step.name and not point.crashed:
                point.crashed = True
                raise InjectedFailure(f"step {step.name} ran, then failed once (injected)")
            return result

        return rigged


class _CrashAfterCheckpoint:
    """Wraps a store: the process dies right after the checkpoint that completes ``step``."""

    def __init__(self, store: SagaStore, step: str | None) -> None:
        self.store = store
        self.step = step
        self.crashed = False

    async def commit(self, checkpoint: Checkpoint) -> None:
        await self.store.commit(checkpoint)
        done = any(e.type == "step_completed" and e.step == self.step for e in checkpoint.events)
        if done and not self.crashed:
            self.crashed = True
            raise SimulatedCrash(f"crash right after the checkpoint of {self.step}")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


async def explore(
    saga: Saga,
    context: Mapping[str, Any] | None = None,
    *,
    check: Callable[[Run], Awaitable[bool | None] | bool | None] | None = None,
    url: str | None = None,
    reset: Callable[[], None] | None = None,
) -> Report:
    """Run ``saga`` with ``context`` once per failure point; return every run, checked.

    ``check(run)`` is the saga's own invariant: raise ``AssertionError`` (or return
    False) when it does not hold. ``reset()`` runs before each run, to clear the fakes
    the steps call. ``url``: a store URL instead of the memory store (fresh per run).
    """
    runs: list[Run] = []
    clean: dict[str, Any] | None = None
    for n, point in enumerate(_points(saga)):
        if reset is not None:
            reset()
        run = await _one_run(saga, copy.deepcopy(dict(context or {})), point, url, n)
        _check_promises(saga, point, run, clean)
        if check is not None and not run.problems:
            try:
                outcome = check(run)
                if inspect.isawaitable(outcome):
                    outcome = await outcome
                if outcome is False:
                    run.problems.append("the saga's own check returned False")
            except AssertionError as e:
                run.problems.append(f"the saga's own check failed: {e}")
        if point.name == "clean run" and run.final is not None:
            clean = run.final.data
        runs.append(run)
    return Report(runs)


async def _one_run(
    saga: Saga, context: dict[str, Any], point: _Point, url: str | None, n: int
) -> Run:
    from ..starting import new_record, started_event

    rigged = _Rigged(saga, point)
    store = open_store(url) if url else MemoryStore()
    await store.open()
    try:
        crashing = _CrashAfterCheckpoint(store, point.crash_after_checkpoint_of)
        # the same id every run (each has a store of its own): what a step derives from
        # the saga id is the same in every run
        record = new_record(rigged.saga, context, "explore")
        await store.create(record, [started_event(record, "explore", None)])
        final: SagaRecord | None = None
        for _ in range(3):  # the first run, and a recovery after each simulated crash
            now = utcnow() + timedelta(hours=1)  # any lease the "dead" process held ran out
            claimed = await store.claim("explore", now=now, lease_until=now, limit=1)
            if not claimed:
                final = await store.get(record.id)
                break
            executor = SagaExecutor(
                crashing,  # type: ignore[arg-type]  # a store in all but its class
                rigged.saga,
                owner="explore",
                hooks=SagaHooks(),
            )
            try:
                final = await executor.run(claimed[0])
            except SimulatedCrash:
                continue
            if final is not None and final.is_terminal:
                break
        final = await store.get(record.id)
        history = await store.events(record.id)
    finally:
        await store.close()
    return Run(point.name, final, history, rigged.calls)


def _check_promises(saga: Saga, point: _Point, run: Run, clean: dict[str, Any] | None) -> None:
    problems = run.problems
    if run.final is None or not run.final.is_terminal:
        problems.append(f"did not end: {run.status}")
        return
    names = [s.name for s in saga.steps]
    forward = run.steps_run()
    completed = [e.step for e in run.history if e.type == "step_completed"]
    undone_expected = [s for s in reversed(completed) if saga.get_step(str(s)).compensate]
    undone = [e.step for e in run.history if e.type == "compensation_completed"]
    if run.status == SagaStatus.COMPENSATED and undone != undone_expected:
        problems.append(
            f"undid {undone}, expected {undone_expected} (the completed steps, reversed)"
        )
    for name in names:
        calls = [c for c in run.calls if c.step == name and not c.compensation]
        allowed = 2 if name in (point.crash_before_checkpoint_of, point.flaky_step) else 1
        retries = (
            (saga.retry_for(saga.get_step(name)).max_attempts) if point.fail_step == name else 1
        )
        if len(calls) > max(allowed, retries):
            problems.append(f"step {name} ran {len(calls)} times")
        if len({c.idempotency_key for c in calls}) > 1:
            problems.append(f"step {name} got different idempotency keys")
    if (
        point.crash_after_checkpoint_of is not None
        and forward.count(point.crash_after_checkpoint_of) > 1
    ):
        problems.append(f"step {point.crash_after_checkpoint_of} ran again after its checkpoint")
    expected = _expected_status(point)
    if run.status != expected:
        problems.append(
            f"ended {run.status.value if run.status else None}, expected {expected.value}"
        )
    if run.status == SagaStatus.COMPLETED and clean is not None and run.final.data != clean:
        changed = sorted(
            k for k in {*clean, *run.final.data} if clean.get(k) != run.final.data.get(k)
        )
        problems.append(f"context differs from the clean run's at {changed}")


def _expected_status(point: _Point) -> SagaStatus:
    if point.compensation_fails > 1:
        return SagaStatus.FAILED
    if point.fail_step is not None:
        return SagaStatus.COMPENSATED
    return SagaStatus.COMPLETED
