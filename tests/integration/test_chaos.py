"""A short fault run in every test pass; ``make chaos`` runs the long one on every store."""

from __future__ import annotations

from pathlib import Path

from .chaos import soak
from .harness import lab_on


def test_a_short_fault_run_loses_nothing_and_writes_nothing_twice(tmp_path: Path) -> None:
    for lab in lab_on("sqlite", tmp_path):
        figures = soak(lab, "sqlite", sagas=300, kills=6)
    assert figures.ok, figures
    assert figures.lost == 0 and figures.duplicate_checkpoints == 0
