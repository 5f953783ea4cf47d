"""``sagakit.testing.explore`` on the purchase example, and on sagas broken on purpose."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import sagakit as sk
from sagakit.testing import Run, explore

ROOT = Path(__file__).resolve().parents[2]


def purchase_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "purchase_plan", ROOT / "examples/purchase_plan.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["purchase_plan"] = module
    spec.loader.exec_module(module)
    return module


async def test_the_purchase_example_keeps_every_promise_at_every_failure_point() -> None:
    example = purchase_example()

    def reset() -> None:
        for fake in (example.ORDERS, example.DEVICES, example.PAYMENTS):
            fake.clear()

    def nothing_charged_unless_completed(run: Run) -> None:
        # the purchase's own rule: a purchase rolled back keeps no money
        if run.status == sk.SagaStatus.COMPENSATED:
            assert not example.PAYMENTS, f"charged {example.PAYMENTS} yet {run.status}"

    report = await explore(
        example.purchase,
        {"user_id": 1, "plan_id": 7},
        check=nothing_charged_unless_completed,
        reset=reset,
    )
    report.assert_ok()
    points = [r.point for r in report.runs]
    # 5 steps failing, 4 retried once, 3 compensations failing once and for good, 10 crashes
    # validate_plan has no compensation and one attempt: no undo or retry points
    assert len(points) == 1 + 5 + 4 + 6 + 10
    crash = next(r for r in report.runs if r.point == "crash in process_payment")
    keys = {c.idempotency_key for c in crash.calls if c.step == "process_payment"}
    assert crash.steps_run().count("process_payment") == 2 and len(keys) == 1
    undo = next(r for r in report.runs if r.point == "step activate_order fails")
    assert undo.compensations_run() == ["process_payment", "allocate_device", "create_order"]


def two_steps(
    *, refund_twice: bool = False, mutate_input: bool = False
) -> tuple[sk.Saga, dict[str, int]]:
    ledger = {"charged": 0, "refunded": 0}
    saga = sk.Saga("broken")

    @saga.step
    def charge(ctx: sk.StepContext) -> dict[str, Any]:
        ledger["charged"] += 1  # not keyed by ctx.idempotency_key: a re-run charges again
        if mutate_input:
            ctx["items"].append("gift")  # the bug under test: changes its input in place
            return {}
        return {"charge_id": "c-1"}

    @charge.compensation
    def refund(ctx: sk.StepContext) -> None:
        ledger["refunded"] += 2 if refund_twice else 1

    @saga.step
    def ship(ctx: sk.StepContext) -> None:
        return None

    return saga, ledger


async def test_a_compensation_that_is_not_idempotent_is_caught() -> None:
    saga, ledger = two_steps(refund_twice=True)

    def balances(run: Run) -> None:
        owed = (
            ledger["charged"] - ledger["refunded"] if run.status != sk.SagaStatus.COMPLETED else 0
        )
        assert owed >= 0, f"refunded {ledger['refunded']} for {ledger['charged']} charges"

    report = await explore(
        saga, {}, check=balances, reset=lambda: ledger.update(charged=0, refunded=0)
    )
    with pytest.raises(AssertionError, match=r"step ship fails .*refunded 2 for 1 charges"):
        report.assert_ok()


async def test_a_step_that_changes_its_input_in_place_is_caught() -> None:
    saga, _ = two_steps(mutate_input=True)
    report = await explore(saga, {"items": ["book"]})
    broken = {r.point: r.problems for r in report.failures}
    # a retry of the step sees what the failed attempt changed, and changes it again
    assert "step charge fails once after running" in broken
    assert any("context differs" in p for p in broken["step charge fails once after running"])
    with pytest.raises(AssertionError, match="context differs"):
        report.assert_ok()
