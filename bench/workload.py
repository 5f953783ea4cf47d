"""The workload every contender runs: a saga of five no-op async steps returning small dicts."""

from __future__ import annotations

import time
from typing import Any

import sagakit as sk

SAGA_NAME = "bench_noop5"
STEPS = 5


class StepClock(sk.SagaHooks):
    """Time each step from its function's start to its checkpoint's commit."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.latencies: list[float] = []

    def step_started(self, saga_id: str) -> None:
        self.started[saga_id] = time.perf_counter()

    def step_completed(self, saga: sk.SagaRecord, step: str, seconds: float) -> None:
        began = self.started.pop(saga.id, None)
        if began is not None:
            self.latencies.append(time.perf_counter() - began)


class Declined(Exception):
    """The failure of the failing path's step: permanent, never retried."""


def make_saga(clock: StepClock | None = None, *, fail_at: int | None = None) -> sk.Saga:
    """Return the 5-step no-op saga; with ``clock``, each step reports when it starts.

    ``fail_at``: that step (0-based) raises at once and the steps before it compensate
    (each compensation a no-op), as when a payment is declined.
    """
    saga = sk.Saga(SAGA_NAME)
    once = sk.Retry(max_attempts=1)
    for index in range(STEPS):
        step = sk.Step(
            name=f"step{index}",
            action=_step(index, clock, fails=index == fail_at),
            compensate=_undo if fail_at is not None else None,
            retry=once if index == fail_at else None,
        )
        saga.add(step)
    return saga


async def _undo(ctx: sk.StepContext) -> None:
    return None


def _step(index: int, clock: StepClock | None, *, fails: bool = False) -> Any:
    key = f"step{index}"

    async def action(ctx: sk.StepContext) -> dict[str, Any]:
        if clock is not None:
            clock.step_started(ctx.saga_id)
        if fails:
            raise Declined(f"{key} declined")
        return step_output(index)

    action.__name__ = key
    return action


def step_output(index: int) -> dict[str, Any]:
    """The small dict step ``index`` returns (the other contenders return the same)."""
    return {f"step{index}": "ok", "last": index}
