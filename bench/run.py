"""Run the benchmark suite: ``python -m bench [--quick] [--only GROUPS] ...``.

Prints one JSON document on stdout (also written to ``--out``, by default
``bench/results.json``) and a readable table on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.backends import get_backend
from bench.machine import describe, source_state
from bench.plan import GROUPS, CaseSpec, build_plan, sizes_for
from bench.table import full_report
from bench.targets import Results, evaluate, ratios

ROOT = Path(__file__).resolve().parent.parent
MARKER = "BENCH_RESULT "


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="a few hundred sagas per case")
    p.add_argument(
        "--only", default=",".join(GROUPS), help=f"comma-separated groups of: {', '.join(GROUPS)}"
    )
    p.add_argument("--sagas", type=int, help="sagas per sagakit/DBOS/baseline case")
    p.add_argument("--recovery-sagas", type=int, help="sagas left for recovery (10,000 full)")
    p.add_argument("--memory-sagas", help="SMALL,LARGE completed sagas for the RSS samples")
    p.add_argument("--backend", default="sqlite", help="database backend (sqlite)")
    p.add_argument("--tmp-root", type=Path, help="where the per-case temp directories go")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per case")
    return p.parse_args(argv)


def run_case(spec: CaseSpec, backend: str, tmp_root: Path, timeout: float) -> dict[str, Any]:
    """Run one case in a fresh interpreter and return its result (or an ``error``)."""
    payload = {
        "case": spec.case,
        "backend": backend,
        "params": spec.params,
        "tmp_root": str(tmp_root),
    }
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "bench.child", json.dumps(payload)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:g}s", "params": spec.params}
    for line in proc.stdout.splitlines():
        if line.startswith(MARKER):
            return {**json.loads(line[len(MARKER) :]), "params": spec.params}
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
    return {"error": f"exit {proc.returncode}: " + "\n".join(tail), "params": spec.params}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    groups = tuple(g.strip() for g in args.only.split(",") if g.strip())
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise SystemExit(f"unknown group(s) {unknown}; choose from {', '.join(GROUPS)}")
    backend = get_backend(args.backend)
    why_not = backend.unavailable()
    if why_not:
        raise SystemExit(f"backend {backend.name} cannot run: {why_not}")
    memory: tuple[int, int] | None = None
    if args.memory_sagas:
        parts = [int(x) for x in args.memory_sagas.split(",")]
        if len(parts) != 2:
            raise SystemExit("--memory-sagas takes SMALL,LARGE")
        memory = (parts[0], parts[1])
    sizes = sizes_for(
        quick=args.quick,
        sagas=args.sagas,
        recovery_sagas=args.recovery_sagas,
        memory_sagas=memory,
    )
    tmp_root = (args.tmp_root or Path(tempfile.gettempdir())).resolve()
    tmp_root.mkdir(parents=True, exist_ok=True)
    plan = build_plan(sizes, groups)
    results: Results = {}
    started = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    for index, spec in enumerate(plan, 1):
        print(f"[{index}/{len(plan)}] {spec.group}.{spec.label} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        outcome = run_case(spec, backend.name, tmp_root, args.timeout)
        results.setdefault(spec.group, {})[spec.label] = outcome
        status = "ERROR " + outcome["error"] if "error" in outcome else "ok"
        print(f"    {time.perf_counter() - t0:.1f}s {status}", file=sys.stderr, flush=True)
    targets = evaluate(results)
    document = {
        "meta": {
            "mode": "quick" if args.quick else "full",
            "groups": list(groups),
            "backend": backend.name,
            "sizes": asdict(sizes),
            "started_at": started_at,
            "duration_s": round(time.perf_counter() - started, 1),
            "machine": describe(tmp_root),
            "source": source_state(ROOT),
        },
        "results": results,
        "ratios": ratios(results),
        "targets": [t.as_dict() for t in targets],
    }
    text = json.dumps(document, indent=2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(text)
    print("\n" + full_report(results, targets) + "\n", file=sys.stderr)
    errors = [
        f"{g}.{label}" for g, cases in results.items() for label, c in cases.items() if "error" in c
    ]
    if errors:
        print(f"cases that failed: {', '.join(errors)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
