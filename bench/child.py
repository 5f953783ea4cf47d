"""Run one case in this interpreter and print its result as one JSON line.

``python -m bench.child '{"case": "...", "backend": "sqlite", "prefix": "...", "params":
{...}}'``. Each case runs in a fresh process so that one contender's threads, caches,
singletons (DBOS) and memory never colour another's numbers. The case's databases
(PostgreSQL schemas) and temporary directory are removed afterwards.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.backends import get_backend
from bench.cases import CASES
from bench.context import CaseContext

#: The line prefix the parent looks for; anything else on stdout (logs) is ignored.
MARKER = "BENCH_RESULT "


def run_case(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the case ``spec`` describes in a fresh temporary directory; return its result."""
    backend = get_backend(spec["backend"])
    workdir = Path(tempfile.mkdtemp(prefix="sagakit-bench-", dir=spec.get("tmp_root")))
    ctx = CaseContext(
        backend=backend,
        workdir=workdir,
        params=dict(spec.get("params", {})),
        prefix=spec.get("prefix", "skb"),
    )
    try:
        fn = CASES[spec["case"]]
        result = asyncio.run(fn(ctx)) if inspect.iscoroutinefunction(fn) else fn(ctx)
    finally:
        try:
            ctx.drop_databases()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return dict(result)


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    result = run_case(spec)
    sys.stdout.write(MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
