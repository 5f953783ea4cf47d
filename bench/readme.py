"""Refresh the results section of ``bench/README.md`` from ``bench/results.json``.

``python -m bench.readme`` after a full run (``make bench``). It refuses a quick or partial
run unless ``--force``: the README keeps the numbers of a full run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/readme.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.plan import GROUPS
from bench.table import full_report
from bench.targets import evaluate

HERE = Path(__file__).resolve().parent
START, END = "<!-- results:start -->", "<!-- results:end -->"


_TITLES = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mariadb": "MariaDB"}


def _database_line(name: str, db: dict[str, Any]) -> str:
    settings = ", ".join(f"{k}={v}" for k, v in db.get("settings", {}).items())
    return f"- {name}: {db['engine']} ({settings}); {db['where']}"


def section(document: dict[str, Any]) -> str:
    meta = document["meta"]
    m = meta["machine"]
    source = meta.get("source", {})
    dirty = " (src/ had uncommitted changes)" if source.get("src_uncommitted_changes") else ""
    backends: list[str] = meta.get("backends", list(document["results"]))
    lines = [
        f"Measured {meta['started_at']} ({meta['mode']} run, {meta['duration_s']:.0f} s), "
        f"sagakit at commit `{source.get('commit')}`{dirty}.",
        "",
        f"- machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, {m['platform']}",
        f"- Python {m['python']}, " + ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v),
        *(_database_line(name, meta["databases"][name]) for name in backends),
    ]
    sizes = meta.get("sizes", {})
    for name in backends[1:]:
        differ = {
            k: v for k, v in sizes.get(name, {}).items() if sizes.get(backends[0], {}).get(k) != v
        }
        if differ:
            changes = ", ".join(f"{k}={v}" for k, v in differ.items())
            lines.append(f"- sizes on {name} that differ from {backends[0]}: {changes}")
    for name in backends:
        results = document["results"][name]
        lines += [
            "",
            f"### {_TITLES.get(name, name)}",
            "",
            "```text",
            full_report(results, evaluate(results, name), name),
            "```",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.readme", description=__doc__)
    p.add_argument("--results", type=Path, default=HERE / "results.json")
    p.add_argument("--readme", type=Path, default=HERE / "README.md")
    p.add_argument("--force", action="store_true", help="accept a quick or partial run")
    args = p.parse_args(argv)
    document = json.loads(args.results.read_text())
    meta = document["meta"]
    if not args.force and (meta["mode"] != "full" or set(meta["groups"]) != set(GROUPS)):
        raise SystemExit("results.json is not a full run of every group; use --force to accept")
    text = args.readme.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    args.readme.write_text(f"{head}{START}\n{section(document)}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
