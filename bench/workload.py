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


def make_saga(clock: StepClock | None = None) -> sk.Saga:
    """Return the 5-step no-op saga; with ``clock``, each step reports when it starts."""
    saga = sk.Saga(SAGA_NAME)
    for index in range(STEPS):
        saga.add(sk.Step(name=f"step{index}", action=_step(index, clock)))
    return saga


def _step(index: int, clock: StepClock | None) -> Any:
    key = f"step{index}"

    async def action(ctx: sk.StepContext) -> dict[str, Any]:
        if clock is not None:
            clock.step_started(ctx.saga_id)
        return step_output(index)

    action.__name__ = key
    return action


def step_output(index: int) -> dict[str, Any]:
    """The small dict step ``index`` returns (the other contenders return the same)."""
    return {f"step{index}": "ok", "last": index}
