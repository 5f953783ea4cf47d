"""Property: for any pattern of failures, a saga ends in a terminal status consistently."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sagakit as sk

MAX_ATTEMPTS = 2
RETRY = sk.Retry(max_attempts=MAX_ATTEMPTS, initial=0.0001, backoff=1.0, jitter=0)

#: For each step: how many times its action fails, and how many times its compensation fails
#: (None: the step has no compensation).
plans = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=MAX_ATTEMPTS),
        st.one_of(st.none(), st.integers(min_value=0, max_value=MAX_ATTEMPTS)),
    ),
    min_size=1,
    max_size=5,
)


def build(plan: list[tuple[int, int | None]], log: list[tuple[str, str]]) -> sk.Saga:
    saga = sk.Saga("prop", retry=RETRY)
    for i, (step_failures, comp_failures) in enumerate(plan):
        name = f"s{i}"

        async def action(ctx: sk.StepContext, name: str = name, n: int = step_failures) -> Any:
            log.append(("do", name))
            if ctx.attempt <= n:
                raise RuntimeError(f"{name} fails")
            return {name: True}

        async def undo(
            ctx: sk.StepContext, name: str = name, n: int | None = comp_failures
        ) -> None:
            log.append(("undo", name))
            if n is not None and ctx.attempt <= n:
                raise RuntimeError(f"undo {name} fails")

        saga.add(sk.Step(name, action, compensate=None if comp_failures is None else undo))
    return saga


def expected_outcome(plan: list[tuple[int, int | None]]) -> tuple[sk.SagaStatus, list[str]]:
    """What must happen, derived from the plan alone: final status, steps undone in order."""
    failing = next((i for i, (f, _) in enumerate(plan) if f >= MAX_ATTEMPTS), None)
    if failing is None:
        return sk.SagaStatus.COMPLETED, []
    undone: list[str] = []
    for i in reversed(range(failing)):
        comp = plan[i][1]
        if comp is None:
            continue
        if comp >= MAX_ATTEMPTS:
            return sk.SagaStatus.FAILED, undone
        undone.append(f"s{i}")
    return sk.SagaStatus.COMPENSATED, undone


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans)
def test_any_failure_pattern_ends_consistently(plan: list[tuple[int, int | None]]) -> None:
    log: list[tuple[str, str]] = []
    saga = build(plan, log)

    async def scenario() -> tuple[sk.SagaRecord, list[sk.SagaEvent]]:
        async with sk.Runtime("memory://", sagas=[saga]) as rt:
            result = await rt.run("prop", {})
            return result, await rt.history(result.id)

    result, events = asyncio.run(scenario())
    status, undone = expected_outcome(plan)
    assert result.status == status
    # compensations ran exactly for completed steps with a compensation, in reverse order
    completed_undos = [e.step for e in events if e.type == "compensation_completed"]
    assert completed_undos == undone
    # the history agrees with what the functions saw
    completed_steps = [e.step for e in events if e.type == "step_completed"]
    assert (
        completed_steps
        == [f"s{i}" for i, (f, _) in enumerate(plan) if f < MAX_ATTEMPTS][: len(completed_steps)]
    )
    assert len([x for x in log if x[0] == "do"]) == len(
        [e for e in events if e.type in ("step_completed", "step_failed")]
    )
    assert len([x for x in log if x[0] == "undo"]) == len(
        [e for e in events if e.type in ("compensation_completed", "compensation_failed")]
    )
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    terminal = {
        "COMPLETED": "saga_completed",
        "COMPENSATED": "saga_compensated",
        "FAILED": "saga_failed",
    }[status.value]
    assert events[-1].type == terminal
