"""Render a run's results as plain-text tables (what ``make bench`` shows and README keeps)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.targets import Results, Target


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}" if value < 10 else f"{value:.1f}"
    return str(value)


def _align(cell: str, width: int) -> str:
    """Right-align numbers, left-align text."""
    numeric = cell.replace(",", "").replace(".", "", 1).replace("-", "", 1).isdigit()
    return cell.rjust(width) if numeric else cell.ljust(width)


def render(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Return a Markdown-compatible table with aligned columns."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(_align(c, w) for c, w in zip(r, widths, strict=True)) + " |"
        for r in cells
    ]
    return "\n".join([line, rule, *body])


def _pq(case: dict[str, Any], key: str) -> str:
    lat = case.get(key)
    if not isinstance(lat, dict):
        return "-"
    return f"{_fmt(lat.get('p50'))} / {_fmt(lat.get('p99'))}"


def _sql(case: dict[str, Any]) -> tuple[Any, Any]:
    counters = case.get("store_counters")
    if isinstance(counters, dict):
        return counters.get("statements_per_step"), counters.get("commits_per_step")
    trace = case.get("sql_trace", {})
    return trace.get("statements_per_step"), trace.get("commits_per_step")


def runs_table(results: Results) -> str:
    """One row per saga-running case: throughput, latency, SQL per step."""
    rows: list[list[Any]] = []
    for group in ("sagakit", "dbos", "baseline", "restate"):
        for label, case in results.get(group, {}).items():
            if label == "step_cost_paired":
                continue
            if "error" in case:
                rows.append([group, label, "ERROR", "", "", "", "", "", ""])
                continue
            stmts, commits = _sql(case)
            rows.append(
                [
                    group,
                    label,
                    case.get("sagas"),
                    case.get("sagas_per_s"),
                    case.get("steps_per_s"),
                    _pq(case, "saga_latency_ms"),
                    _pq(case, "step_latency_ms"),
                    stmts,
                    commits,
                ]
            )
    headers = [
        "contender",
        "case",
        "sagas",
        "sagas/s",
        "steps/s",
        "saga p50/p99 ms",
        "step p50/p99 ms",
        "stmts/step",
        "commits/step",
    ]
    return render(headers, rows)


def other_table(results: Results) -> str:
    """Floor, recovery and memory as one row each."""
    rows: list[list[Any]] = []
    for label, case in results.get("floor", {}).items():
        rows.append(
            [
                "floor",
                label,
                f"{_fmt(case.get('commits_per_s'))} commits/s",
                case.get("shape", case.get("error")),
            ]
        )
    paired = results.get("sagakit", {}).get("step_cost_paired")
    if paired is not None:
        result = f"step = {_fmt(paired.get('ratio_median'))}x raw commit"
        detail = (
            f"median of {paired.get('rounds')} rounds: step {_fmt(paired.get('step_ms_median'))}"
            f" ms, raw commit {_fmt(paired.get('raw_commit_ms_median'))} ms "
            f"(range {_fmt(paired.get('ratio_min'))}-{_fmt(paired.get('ratio_max'))}x)"
        )
        rows.append(["sagakit", "step_cost_paired", result, paired.get("error", detail)])
    for label, case in results.get("recovery", {}).items():
        detail = (
            f"{case.get('sagas')} sagas, {case.get('workers')} workers, "
            f"{case.get('steps_left_per_saga')} steps left each"
        )
        rate_text = (
            f"{_fmt(case.get('sagas_per_s'))} sagas/s, {_fmt(case.get('steps_per_s'))} steps/s"
        )
        rows.append(["recovery", label, rate_text, case.get("error", detail)])
    for label, case in results.get("processes", {}).items():
        detail = (
            f"{case.get('sagas')} sagas, {case.get('in_flight')} in flight each; claimed twice "
            f"{case.get('claimed_twice')}, lost {case.get('lost')}"
        )
        text = f"{_fmt(case.get('sagas_per_s'))} sagas/s"
        rows.append(["processes", label, text, case.get("error", detail)])
    for label, case in results.get("memory", {}).items():
        samples = case.get("samples", [])
        text = ", ".join(f"{s['sagas']:,}: {s['rss_mib']} MiB" for s in samples)
        rows.append(
            ["memory", label, f"x{_fmt(case.get('growth_ratio'))} RSS", case.get("error", text)]
        )
    for label, case in results.get("relay", {}).items():
        if "p50_ms" in case:
            text = f"commit -> confirm p50 {_fmt(case.get('p50_ms'))} ms, p99 {_fmt(case.get('p99_ms'))} ms"
        else:
            text = f"{_fmt(case.get('messages_per_s'))} messages/s"
        detail = f"{case.get('messages')} messages"
        if "ratio_median" in case:
            text += f" (aio-pika {_fmt(case.get('floor_messages_per_s'))})"
            detail += f", {case.get('rounds')} rounds, ratios {case.get('ratios')}"
        rows.append(["relay", label, text, case.get("error", detail)])
    for label, case in results.get("toolkit", {}).items():
        text = f"{_fmt(case.get('seconds_per_explore'))} s per explore"
        detail = f"{case.get('points')} failure points, mean of {case.get('rounds')} passes"
        rows.append(["toolkit", label, text, case.get("error", detail)])
    for label, case in results.get("machines", {}).items():
        counters = case.get("store_counters") or {}
        detail = (
            f"{_fmt(counters.get('statements_per_event'))} writer statements, "
            f"{_fmt(counters.get('commits_per_event'))} commits per event"
            if counters
            else f"{case.get('events')} events from {case.get('tasks')} tasks"
        )
        text = f"{_fmt(case.get('events_per_s'))} events/s"
        rows.append(["machines", label, text, case.get("error", detail)])
    return render(["group", "case", "result", "detail"], rows)


def targets_table(targets: Sequence[Target]) -> str:
    """Each target with its measured ratio, whether met and by how much."""
    rows = []
    for t in targets:
        met = {True: "MET", False: "MISSED", None: "not measured"}[t.met]
        rows.append([t.id, f"{t.op} {t.threshold:g}", t.measured, met, t.headroom, t.description])
    return render(["target", "want", "measured", "status", "headroom", "what"], rows)


_RUNS_NOTE = {
    "sqlite": (
        "Saga runs on SQLite (a file per case, WAL, synchronous=FULL unless the case says\n"
        "default). stmts/step and commits/step: sagakit from its store counters, saga start\n"
        "included (an executemany counts once); DBOS and baseline from sqlite3's trace\n"
        "(every executed statement but BEGIN/COMMIT; each executemany row counts)."
    ),
    "postgresql": (
        "Saga runs on PostgreSQL (a schema per case, synchronous_commit=on).\n"
        "stmts/step and commits/step: sagakit from its store counters, saga start included\n"
        "(an executemany counts once); DBOS and baseline from SQLAlchemy's cursor and commit\n"
        "events (every statement but BEGIN/COMMIT; each executemany row counts)."
    ),
    "mariadb": (
        "Saga runs on MariaDB (a database per case, innodb_flush_log_at_trx_commit=1).\n"
        "stmts/step and commits/step: sagakit from its store counters, saga start included;\n"
        "the baseline from SQLAlchemy's cursor and commit events. DBOS keeps its state in\n"
        "PostgreSQL or SQLite only: no DBOS runs here, so its targets are not measured."
    ),
}


def full_report(results: Results, targets: Sequence[Target], backend: str = "sqlite") -> str:
    """All three tables of one backend, titled."""
    return "\n\n".join(
        [
            _RUNS_NOTE.get(backend, f"Saga runs on {backend}."),
            runs_table(results),
            "Floor, recovery, memory",
            other_table(results),
            "Targets (headroom > 1: met with room; < 1: missed by that factor)",
            targets_table(targets),
        ]
    )
