"""The ratios the design asks for, computed from one run's results, and whether each is met.

Each backend's results are compared only with results on the same backend, and every
backend has the same targets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bench.stats import ratio

Results = dict[str, dict[str, dict[str, Any]]]


#: "256 in flight >= N x DBOS's best concurrent configuration", per backend.
CONCURRENT_VS_DBOS = {"sqlite": 10.0, "postgresql": 10.0, "mariadb": 10.0}
_ENGINE = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mariadb": "MariaDB"}


@dataclass(frozen=True, slots=True)
class Target:
    """One target: ``measured`` against ``threshold`` in direction ``op`` (">=" or "<=")."""

    backend: str
    id: str
    description: str
    op: str
    threshold: float
    measured: float | None
    basis: str

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return None
        if self.op == ">=":
            return self.measured >= self.threshold
        return self.measured <= self.threshold

    @property
    def headroom(self) -> float | None:
        """How far past the threshold (> 1 means met with room, < 1 means missed by that factor)."""
        if self.measured is None or self.measured == 0:
            return None
        value = (
            self.measured / self.threshold if self.op == ">=" else self.threshold / self.measured
        )
        return round(value, 3)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met, "headroom": self.headroom}


def _get(results: Results, group: str, label: str, *keys: str) -> float | None:
    value: Any = results.get(group, {}).get(label)
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return float(value) if isinstance(value, int | float) else None


def _best(results: Results, group: str, key: str, in_flight: set[int]) -> tuple[float | None, str]:
    """Return the highest ``key`` among ``group``'s cases at those in-flight levels, and its label."""
    candidates = [
        (float(case[key]), label)
        for label, case in results.get(group, {}).items()
        if case.get("in_flight") in in_flight and isinstance(case.get(key), int | float)
    ]
    return max(candidates) if candidates else (None, "")


def _floor(results: Results) -> float | None:
    """The sequential raw-commit rate: the mean of the runs at the start and end, if both ran."""
    runs = [
        _get(results, "floor", label, "commits_per_s")
        for label in ("sequential", "sequential_repeat")
    ]
    values = [v for v in runs if v is not None]
    return sum(values) / len(values) if values else None


def ratios(results: Results) -> dict[str, Any]:
    """Return the named comparison ratios (None where a side was not measured)."""
    seq = _get(results, "sagakit", "in_flight_1", "sagas_per_s")
    seq_steps = _get(results, "sagakit", "in_flight_1", "steps_per_s")
    floor = _floor(results)
    dbos_seq, dbos_seq_label = _best(results, "dbos", "sagas_per_s", {1})
    dbos_conc, dbos_conc_label = _best(results, "dbos", "sagas_per_s", {50})
    base_seq, base_label = _best(results, "baseline", "sagas_per_s", {1})
    c256 = _get(results, "sagakit", "in_flight_256", "sagas_per_s")
    fresh64 = _get(results, "sagakit", "in_flight_64", "steps_per_s")
    fresh64_sagas = _get(results, "sagakit", "in_flight_64", "sagas_per_s")
    rec = _get(results, "recovery", "midway", "steps_per_s")
    rec_sagas = _get(results, "recovery", "midway", "sagas_per_s")
    pending = _get(results, "recovery", "pending", "steps_per_s")
    return {
        "floor_sequential_commits_per_s": round(floor, 2) if floor is not None else None,
        "floor_drift_end_over_start": ratio(
            _get(results, "floor", "sequential_repeat", "commits_per_s"),
            _get(results, "floor", "sequential", "commits_per_s"),
        ),
        "step_cost_over_raw_commit": _get(results, "sagakit", "step_cost_paired", "ratio_median"),
        "step_cost_over_raw_commit_unpaired": ratio(floor, seq_steps),
        "sequential_vs_dbos_best": ratio(seq, dbos_seq),
        "dbos_best_sequential": dbos_seq_label or None,
        "sequential_vs_baseline_best": ratio(seq, base_seq),
        "baseline_best_sequential": base_label or None,
        "in_flight_256_vs_dbos_best_concurrent": ratio(c256, dbos_conc),
        "dbos_best_concurrent": dbos_conc_label or None,
        "recovery_steps_vs_fresh_64": ratio(rec, fresh64),
        "recovery_sagas_vs_fresh_64": ratio(rec_sagas, fresh64_sagas),
        "pending_drain_steps_vs_fresh_64": ratio(pending, fresh64),
        "rss_large_over_small": _get(results, "memory", "rss", "growth_ratio"),
        "sequential_vs_restate": ratio(
            _get(results, "sagakit", "in_flight_1", "sagas_per_s"),
            _get(results, "restate", "in_flight_1", "sagas_per_s"),
        ),
        "in_flight_64_vs_restate": ratio(
            _get(results, "sagakit", "in_flight_64", "sagas_per_s"),
            _get(results, "restate", "in_flight_64", "sagas_per_s"),
        ),
        "relay_vs_raw_aio_pika": _get(results, "relay", "throughput", "ratio_median"),
        "relay_vs_bare_aio_pika": ratio(
            _get(results, "relay", "throughput", "messages_per_s"),
            _get(results, "relay", "floor_bare", "messages_per_s"),
        ),
        "machine_events_1_vs_floor": ratio(
            _get(results, "machines", "events_in_flight_1", "events_per_s"), floor
        ),
        "machine_events_64_vs_floor": ratio(
            _get(results, "machines", "events_in_flight_64", "events_per_s"), floor
        ),
        "machine_hot_vs_floor": ratio(
            _get(results, "machines", "hot_instance_16_tasks", "events_per_s"), floor
        ),
        "machine_events_vs_orchestrated_steps": ratio(
            _get(results, "machines", "events_in_flight_1", "events_per_s"), seq_steps
        ),
        "failing_vs_success_checkpoints": ratio(
            _get(results, "sagakit", "failing_in_flight_1", "checkpoints_per_s"),
            _get(results, "sagakit", "in_flight_1", "checkpoints_per_s"),
        ),
        "relay_commit_to_confirm_p50_ms": _get(results, "relay", "latency", "p50_ms"),
        "relay_commit_to_confirm_p99_ms": _get(results, "relay", "latency", "p99_ms"),
    }


def evaluate(results: Results, backend: str = "sqlite") -> list[Target]:
    """Return every target on ``backend`` (its results) with its measured value.

    A value is None where it was not measured in this run.
    """
    r = ratios(results)
    concurrent = CONCURRENT_VS_DBOS.get(backend, 10.0)
    counters = ("sagakit", "in_flight_1", "store_counters")
    rows: list[tuple[str, str, str, float, float | None, str]] = [
        (
            "step_cost",
            "sequential per-step time <= 1.5x one raw single-row commit",
            "<=",
            1.5,
            r["step_cost_over_raw_commit"],
            "sagakit.step_cost_paired: median per-round ratio, alternating blocks",
        ),
        (
            "sequential_vs_dbos",
            "sequential sagas/s >= 5x DBOS (best sequential DBOS configuration)",
            ">=",
            5.0,
            r["sequential_vs_dbos_best"],
            f"sagakit.in_flight_1 / dbos.{r['dbos_best_sequential']}",
        ),
        (
            "sequential_vs_baseline",
            "sequential sagas/s >= 2x the hand-written ORM baseline (best sequential)",
            ">=",
            2.0,
            r["sequential_vs_baseline_best"],
            f"sagakit.in_flight_1 / baseline.{r['baseline_best_sequential']}",
        ),
        (
            "concurrent_vs_dbos",
            f"256 in flight >= {concurrent:g}x DBOS's best concurrent configuration on "
            + _ENGINE.get(backend, backend),
            ">=",
            concurrent,
            r["in_flight_256_vs_dbos_best_concurrent"],
            f"sagakit.in_flight_256 / dbos.{r['dbos_best_concurrent']}",
        ),
        (
            "statements_per_step",
            "<= 2 SQL statements per step checkpoint (sequential, store counter)",
            "<=",
            2.0,
            _get(results, *counters, "checkpoint_statements_per_step"),
            "sagakit.in_flight_1 store counters, saga start excluded",
        ),
        (
            "commits_per_step",
            "<= 1 commit per step checkpoint (sequential, store counter)",
            "<=",
            1.0,
            _get(results, *counters, "checkpoint_commits_per_step"),
            "sagakit.in_flight_1 store counters, saga start excluded",
        ),
        (
            "failing_path",
            "a saga whose step 4 fails and 1-3 compensate: checkpoints/s >= 0.8x the success path's",
            ">=",
            0.8,
            r["failing_vs_success_checkpoints"],
            "sagakit.failing_in_flight_1 / sagakit.in_flight_1 checkpoints/s",
        ),
        (
            "recovery_rate",
            "recovery >= 50% of the fresh rate (steps/s, 64 workers vs 64 in flight)",
            ">=",
            0.5,
            r["recovery_steps_vs_fresh_64"],
            "recovery.midway steps/s / sagakit.in_flight_64 steps/s",
        ),
        (
            "relay_vs_aio_pika",
            "relay messages/s >= 0.7x raw aio-pika publishing the same messages with confirms",
            ">=",
            0.7,
            r["relay_vs_raw_aio_pika"],
            "relay.throughput: median per round of relay / aio-pika messages/s, blocks"
            " alternating, RabbitMQ at 127.0.0.1",
        ),
        (
            "machine_commits_per_event",
            "<= 1.5 commits per state machine event (sequential, store counter)",
            "<=",
            1.5,
            _get(results, "machines", "events_in_flight_1", "store_counters", "commits_per_event"),
            "machines.events_in_flight_1 store counters (one event into an existing instance)",
        ),
        (
            "machine_statements_per_event",
            "<= 3 SQL statements per state machine event (sequential, SQL trace)",
            "<=",
            3.0,
            _get(results, "machines", "events_in_flight_1", "sql_trace", "statements_per_event"),
            "machines.events_in_flight_1 traced statements: read, update, history insert",
        ),
        (
            "machine_events_vs_steps",
            "state machine events/s >= 0.5x orchestrated steps/s (sequential)",
            ">=",
            0.5,
            r["machine_events_vs_orchestrated_steps"],
            "machines.events_in_flight_1 / sagakit.in_flight_1 steps/s",
        ),
        (
            "memory_flat",
            "RSS after the large run within 10% of RSS after the small run",
            "<=",
            1.1,
            r["rss_large_over_small"],
            "memory.rss rss_large_mib / rss_small_mib",
        ),
    ]
    return [Target(backend, *row) for row in rows]
