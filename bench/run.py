"""Run the benchmark suite: ``python -m bench [--quick] [--only GROUPS] [--backend ...]``.

Prints one JSON document on stdout (also written to ``--out``, by default
``bench/results.json``) and readable tables on stderr, one set per backend.
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

from bench.backends import PG_URL_ENV, Backend, get_backend
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
    p.add_argument(
        "--backend",
        help="comma-separated backends of: sqlite, postgresql, mariadb (default: all three; "
        "a default backend that cannot run here is skipped with a notice, a named one is an "
        "error)",
    )
    p.add_argument("--pg-url", help=f"PostgreSQL server and database (or ${PG_URL_ENV})")
    p.add_argument("--tmp-root", type=Path, help="where the per-case temp directories go")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per case")
    return p.parse_args(argv)


def run_case(
    spec: CaseSpec, backend: Backend, tmp_root: Path, timeout: float, prefix: str
) -> dict[str, Any]:
    """Run one case in a fresh interpreter and return its result (or an ``error``).

    Every database the case makes is named ``prefix…``; whatever is left of them when
    the case process ends (it crashed or timed out) is removed here.
    """
    payload = {
        "case": spec.case,
        "backend": backend.name,
        "prefix": prefix,
        "params": spec.params,
        "tmp_root": str(tmp_root),
    }
    try:
        return _run_child(payload, spec, timeout)
    finally:
        backend.sweep(f"{prefix}_")


def _run_child(payload: dict[str, Any], spec: CaseSpec, timeout: float) -> dict[str, Any]:
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


def backends_to_run(requested: str | None) -> list[Backend]:
    """Return the backends to run: those named, or every one that can run here."""
    names = [b.strip() for b in (requested or "sqlite,postgresql,mariadb").split(",") if b.strip()]
    chosen: list[Backend] = []
    for name in names:
        backend = get_backend(name)
        why_not = backend.unavailable()
        if why_not is None:
            chosen.append(backend)
        elif requested:
            raise SystemExit(f"backend {backend.name} cannot run: {why_not}")
        else:
            print(f"skipping backend {backend.name}: {why_not}", file=sys.stderr, flush=True)
    if not chosen:
        raise SystemExit("no backend can run here")
    return chosen


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    groups = tuple(g.strip() for g in args.only.split(",") if g.strip())
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise SystemExit(f"unknown group(s) {unknown}; choose from {', '.join(GROUPS)}")
    if args.pg_url:
        os.environ[PG_URL_ENV] = args.pg_url  # the case processes inherit it
    backends = backends_to_run(args.backend)
    memory: tuple[int, int] | None = None
    if args.memory_sagas:
        parts = [int(x) for x in args.memory_sagas.split(",")]
        if len(parts) != 2:
            raise SystemExit("--memory-sagas takes SMALL,LARGE")
        memory = (parts[0], parts[1])
    tmp_root = (args.tmp_root or Path(tempfile.gettempdir())).resolve()
    tmp_root.mkdir(parents=True, exist_ok=True)
    all_sizes = {
        b.name: sizes_for(
            quick=args.quick,
            sagas=args.sagas,
            recovery_sagas=args.recovery_sagas,
            memory_sagas=memory,
            backend=b.name,
        )
        for b in backends
    }
    plans = {b.name: build_plan(all_sizes[b.name], groups, b.name) for b in backends}
    total = sum(len(plan) for plan in plans.values())
    results: dict[str, Results] = {}
    started = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    index = 0
    for backend in backends:
        results[backend.name] = {}
        for spec in plans[backend.name]:
            index += 1
            where = f"{backend.name}:{spec.group}.{spec.label}"
            print(f"[{index}/{total}] {where} ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            prefix = f"skb_{os.getpid()}_{index}"
            outcome = run_case(spec, backend, tmp_root, args.timeout, prefix)
            outcome["case_seconds"] = round(time.perf_counter() - t0, 1)
            results[backend.name].setdefault(spec.group, {})[spec.label] = outcome
            status = "ERROR " + outcome["error"] if "error" in outcome else "ok"
            print(f"    {time.perf_counter() - t0:.1f}s {status}", file=sys.stderr, flush=True)
    targets = {b.name: evaluate(results[b.name], b.name) for b in backends}
    document = {
        "meta": {
            "mode": "quick" if args.quick else "full",
            "groups": list(groups),
            "backends": [b.name for b in backends],
            "sizes": {name: asdict(sizes) for name, sizes in all_sizes.items()},
            "started_at": started_at,
            "duration_s": round(time.perf_counter() - started, 1),
            "machine": describe(tmp_root),
            "databases": {b.name: b.describe(tmp_root) for b in backends},
            "source": source_state(ROOT),
            "pid": os.getpid(),  # PostgreSQL schemas were named skb_<pid>_<case>_...
        },
        "results": results,
        "ratios": {b.name: ratios(results[b.name]) for b in backends},
        "targets": [t.as_dict() for b in backends for t in targets[b.name]],
    }
    text = json.dumps(document, indent=2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(text)
    for b in backends:
        report = full_report(results[b.name], targets[b.name], b.name)
        print(f"\n## {b.name}\n\n{report}\n", file=sys.stderr)
    errors = [
        f"{name}:{g}.{label}"
        for name, groups_ in results.items()
        for g, cases in groups_.items()
        for label, c in cases.items()
        if "error" in c
    ]
    if errors:
        print(f"cases that failed: {', '.join(errors)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
