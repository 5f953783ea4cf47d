"""The README's first command: the purchase-plan demo, run as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_demo(db: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "purchase_plan.py"), "--db", f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_demo_completes_one_purchase_and_compensates_the_declined_one(tmp_path: Path) -> None:
    out = run_demo(tmp_path / "sagas.db")
    ok, bad = out.split("saga order-43")
    assert "saga order-42: COMPLETED" in ok
    for step in (
        "validate_plan",
        "create_order",
        "allocate_device",
        "process_payment",
        "activate_order",
    ):
        assert f"step_completed {step} (attempt 1)" in ok
    assert ": COMPENSATED (error)" in bad
    assert "error: card declined for order ord-order-43" in bad
    for attempt in (1, 2, 3):
        assert f"step_failed process_payment (attempt {attempt})" in bad
    # compensations run in reverse order of the completed steps
    assert bad.index("compensation_completed allocate_device") < bad.index(
        "compensation_completed create_order"
    )
    assert "saga_compensated" in bad
    # what the steps published reached the consumer through the relay
    for line in (
        "received orders.created {'order_id': 'ord-order-42', 'user_id': 1} (order-42)",
        "received payments.captured {'order_id': 'ord-order-42', 'cents': 1999} (order-42)",
        "received orders.activated {'order_id': 'ord-order-42'} (order-42)",
        "received orders.cancelled {'order_id': 'ord-order-43'} (order-43)",
    ):
        assert line in out
    assert "messages received: 5" in out


def test_demo_run_twice_returns_the_stored_sagas_without_running_again(tmp_path: Path) -> None:
    db = tmp_path / "sagas.db"
    first = run_demo(db)
    second = run_demo(db)
    # the same ids are returned from the store: same timelines, no second attempt
    assert first.count("step_completed") == second.count("step_completed")
    assert second.count("step_failed process_payment") == 3
