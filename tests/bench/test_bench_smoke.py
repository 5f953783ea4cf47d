"""Smoke test: the benchmark suite runs and emits the JSON it promises (no speed thresholds)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and value > 0


def test_quick_sagakit_run_emits_json(tmp_path: Path) -> None:
    # Given a quick run of the sagakit cases only, on 200 sagas each
    out = tmp_path / "results.json"
    cmd = [sys.executable, "-m", "bench", "--quick", "--only", "sagakit", "--sagas", "200"]
    cmd += ["--out", str(out), "--tmp-root", str(tmp_path)]

    # When it runs in a subprocess
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)

    # I expect one JSON document on stdout, the same as the file, with every in-flight case
    assert proc.returncode == 0, proc.stderr[-3000:]
    document = json.loads(proc.stdout)
    assert json.loads(out.read_text()) == document
    assert {"meta", "results", "ratios", "targets"} <= document.keys()
    assert document["meta"]["machine"]["nproc"] >= 1
    cases = dict(document["results"]["sagakit"])
    paired = cases.pop("step_cost_paired")
    assert set(cases) == {"in_flight_1", "in_flight_16", "in_flight_64", "in_flight_256"}
    assert _positive(paired["ratio_median"]) and _positive(paired["raw_commit_ms_median"])
    for case in cases.values():
        assert case["sagas"] == 200
        for key in ("sagas_per_s", "steps_per_s", "seconds"):
            assert _positive(case[key]), (key, case)
        for key in ("saga_latency_ms", "step_latency_ms"):
            assert _positive(case[key]["p50"]) and _positive(case[key]["p99"]), (key, case)
        counters = case["store_counters"]
        assert _positive(counters["statements_per_step"])
        assert _positive(counters["commits_per_step"])
        assert _positive(case["sqlite_trace"]["statements_per_step"])
    statuses = {t["id"]: t["met"] for t in document["targets"]}
    assert statuses["statements_per_step"] is not None
    assert statuses["step_cost"] is not None
    assert statuses["sequential_vs_dbos"] is None  # DBOS was not run
