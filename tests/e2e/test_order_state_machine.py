"""The order state machine example, run as a user runs it: on SQLite, and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ..servers import store_url_for

ROOT = Path(__file__).resolve().parents[2]


def run_example(url: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "order_state_machine.py"), "--db", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_order_example_pays_ships_holds_an_early_payment_and_times_out(
    backend: str, tmp_path: Path
) -> None:
    with store_url_for(backend, tmp_path) as url:
        out = run_example(url)
    o1, o2, o3 = (out.split(f"order:o-{n}: ")[1] for n in (1, 2, 3))
    assert o1.startswith("COMPLETED in Shipped")
    assert "'tracking': 'TRK-o-1'" in o1.splitlines()[0]
    assert "PaymentCaptured Submitted -> Paid" in o1
    assert "payment for o-2 before its order: held" in out
    # the early payment is kept, then applied right after the order
    lines = [line.strip() for line in o2.splitlines()[1:4]]
    assert lines == [
        "event_held PaymentCaptured",
        "event_applied OrderSubmitted (new) -> Submitted",
        "event_applied PaymentCaptured Submitted -> Paid",
    ]
    assert o3.startswith("COMPLETED in Expired")
    assert "PaymentTimeout Submitted -> Expired" in o3
