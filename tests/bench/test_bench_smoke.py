"""Smoke tests: the benchmark suite runs and emits the JSON it promises (no speed thresholds)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bench.backends import get_backend
from bench.plan import build_plan, sizes_for
from bench.targets import evaluate

ROOT = Path(__file__).resolve().parents[2]


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and value > 0


def _run(tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "results.json"
    cmd = [sys.executable, "-m", "bench", "--quick", *args]
    cmd += ["--out", str(out), "--tmp-root", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    document: dict[str, Any] = json.loads(proc.stdout)
    assert json.loads(out.read_text()) == document
    return document


def _check_sagakit_cases(document: dict[str, Any], backend: str, sagas: int) -> None:
    cases = dict(document["results"][backend]["sagakit"])
    paired = cases.pop("step_cost_paired")
    assert set(cases) == {
        "in_flight_1",
        "in_flight_16",
        "in_flight_64",
        "in_flight_256",
        "failing_in_flight_1",
    }
    assert cases["failing_in_flight_1"]["fail_at"] == 3
    assert _positive(cases["failing_in_flight_1"]["checkpoints_per_s"])
    assert _positive(paired["ratio_median"]) and _positive(paired["raw_commit_ms_median"])
    for case in cases.values():
        assert case["sagas"] == sagas
        for key in ("sagas_per_s", "steps_per_s", "seconds"):
            assert _positive(case[key]), (key, case)
        for key in ("saga_latency_ms", "step_latency_ms"):
            assert _positive(case[key]["p50"]) and _positive(case[key]["p99"]), (key, case)
        counters = case["store_counters"]
        assert _positive(counters["statements_per_step"])
        assert _positive(counters["commits_per_step"])
        assert _positive(case["sql_trace"]["statements_per_step"])


def test_quick_sagakit_run_emits_json(tmp_path: Path) -> None:
    # Given a quick run of the sagakit cases only, on SQLite, 200 sagas each
    args = ("--backend", "sqlite", "--only", "sagakit", "--sagas", "200")

    # When it runs in a subprocess
    document = _run(tmp_path, *args)

    # I expect one JSON document on stdout, the same as the file, with every in-flight case
    assert {"meta", "results", "ratios", "targets"} <= document.keys()
    assert document["meta"]["machine"]["nproc"] >= 1
    assert document["meta"]["backends"] == ["sqlite"]
    _check_sagakit_cases(document, "sqlite", 200)
    statuses = {t["id"]: t["met"] for t in document["targets"] if t["backend"] == "sqlite"}
    assert statuses["statements_per_step"] is not None
    assert statuses["step_cost"] is not None
    assert statuses["sequential_vs_dbos"] is None  # DBOS was not run


def _server_unavailable(backend: str) -> str | None:
    try:
        return get_backend(backend).unavailable()
    except Exception as e:  # the driver or the server is missing: skip, do not fail
        return str(e)


@pytest.mark.parametrize(
    ("backend", "engine"), [("postgresql", "PostgreSQL"), ("mariadb", "MariaDB")]
)
def test_quick_server_run_emits_json_and_leaves_no_database(
    tmp_path: Path, backend: str, engine: str
) -> None:
    why = _server_unavailable(backend)
    if why is not None:  # skip on a laptop without the server, fail in CI
        if os.environ.get("CI"):
            pytest.fail(f"CI: {engine} bench backend unavailable: {why}")
        pytest.skip(f"{engine} bench backend unavailable: {why}")
    # Given a quick run of the floor and sagakit cases on the server, 50 sagas each
    args = ("--backend", backend, "--only", "floor,sagakit", "--sagas", "50")

    # When it runs in a subprocess
    document = _run(tmp_path, *args)

    # I expect the server's floor and sagakit cases, their targets, and nothing left
    assert document["meta"]["backends"] == [backend]
    assert document["meta"]["databases"][backend]["engine"].startswith(engine)
    floor = document["results"][backend]["floor"]
    assert set(floor) == {
        "sequential",
        "sequential_explicit_transaction",
        "concurrent_32_pool",
        "sequential_repeat",
    }
    assert all(_positive(case["commits_per_s"]) for case in floor.values())
    _check_sagakit_cases(document, backend, 50)
    statuses = {t["id"]: t["met"] for t in document["targets"] if t["backend"] == backend}
    assert statuses["step_cost"] is not None
    assert statuses["commits_per_step"] is not None
    pid = document["meta"].get("pid")
    assert pid is not None
    assert get_backend(backend).sweep(f"skb_{pid}_") == 0


def test_plans_differ_by_backend_where_they_should() -> None:
    # Given the quick sizes
    sizes = sizes_for(quick=True)

    # When plans are built for both backends
    sqlite = {(s.group, s.label) for s in build_plan(sizes, ("floor", "dbos"), "sqlite")}
    pg = {(s.group, s.label) for s in build_plan(sizes, ("floor", "dbos"), "postgresql")}
    maria = {(s.group, s.label) for s in build_plan(sizes, ("floor", "dbos"), "mariadb")}

    # I expect journals on SQLite only, and each backend's own floor shapes
    assert ("dbos", "sync_wal_in_flight_1") in sqlite
    assert ("dbos", "sync_in_flight_1") in pg
    assert ("floor", "concurrent_32_shared_connection") in sqlite
    assert ("floor", "concurrent_32_pool") in pg
    # and no DBOS on MariaDB, which DBOS cannot keep its state in
    assert not any(group == "dbos" for group, _ in maria)
    assert ("floor", "concurrent_32_pool") in maria
    assert (
        sizes_for(quick=False, backend="postgresql").memory_large
        < sizes_for(quick=False).memory_large
    )


def test_concurrent_target_is_ten_times_dbos_on_every_backend() -> None:
    # Given results where 256 in flight runs 5x, then 12x DBOS's best concurrent run
    def met(backend: str, times: float) -> bool | None:
        results: dict[str, Any] = {
            "sagakit": {"in_flight_256": {"sagas_per_s": 100.0 * times}},
            "dbos": {"async_in_flight_50": {"in_flight": 50, "sagas_per_s": 100.0}},
        }
        (target,) = [t for t in evaluate(results, backend) if t.id == "concurrent_vs_dbos"]
        return target.met

    # I expect 5x to miss and 12x to meet the target, on both backends
    assert [met(b, 5) for b in ("sqlite", "postgresql")] == [False, False]
    assert [met(b, 12) for b in ("sqlite", "postgresql")] == [True, True]


def test_worker_processes_run_on_a_server_only() -> None:
    # Given the quick sizes, when the processes group is planned for each backend
    sizes = sizes_for(quick=True)
    sqlite = build_plan(sizes, ("processes",), "sqlite")
    pg = build_plan(sizes, ("processes",), "postgresql")

    # I expect 1, 2 and 4 processes on PostgreSQL and none on SQLite's single writer
    assert sqlite == []
    assert [s.params["processes"] for s in pg] == [1, 2, 4]


def test_restate_runs_beside_every_backend_sequential_and_64_in_flight() -> None:
    # Given the quick sizes, when the restate group is planned for each backend
    sizes = sizes_for(quick=True)
    plans = {b: build_plan(sizes, ("restate",), b) for b in ("sqlite", "postgresql", "mariadb")}

    # I expect the same two shapes everywhere: its log is its own, not the backend's
    for plan in plans.values():
        assert [(s.case, s.params["in_flight"]) for s in plan] == [
            ("restate.run", 1),
            ("restate.run", 64),
        ]
