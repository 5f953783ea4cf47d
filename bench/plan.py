"""What a run measures: the sizes for ``--quick`` and full mode, and the list of cases."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

#: The groups ``--only`` can pick, in the order they run.
GROUPS = (
    "floor",
    "sagakit",
    "dbos",
    "baseline",
    "recovery",
    "processes",
    "memory",
    "relay",
    "machines",
    "toolkit",
    "restate",
)

#: sagakit in-flight levels; 64 matches the recovery worker's concurrency.
SAGAKIT_IN_FLIGHT = (1, 16, 64, 256)
DBOS_IN_FLIGHT = (1, 50)
#: Restate in-flight levels: sequential, and sagakit's 64.
RESTATE_IN_FLIGHT = (1, 64)
BASELINE_SHAPES = (("async", 1), ("sync", 1), ("async", 16))
RECOVERY_WORKERS = 64
#: Worker processes on one PostgreSQL, 64 in flight each.
WORKER_PROCESSES = (1, 2, 4)
MEMORY_IN_FLIGHT = 256


@dataclass(frozen=True, slots=True)
class Sizes:
    """How many commits or sagas each case runs."""

    floor_commits: int
    sagakit_sequential: int
    sagakit_concurrent: int
    dbos_sequential: int
    dbos_concurrent: int
    baseline_sequential: int
    baseline_concurrent: int
    paired_rounds: int
    paired_sagas_per_round: int
    recovery_sagas: int
    memory_small: int
    memory_large: int
    warmup: int
    #: Outbox messages per round of the relay's alternating blocks, and the rounds.
    relay_messages: int = 3000
    relay_rounds: int = 8
    relay_latency_sagas: int = 300
    machine_instances: int = 10_000
    machine_hot_events: int = 2000
    #: SQLite journals DBOS runs on: "wal" (as sagakit) and "default" (as DBOS ships).
    dbos_journals: tuple[str, ...] = ("wal", "default")


FULL = Sizes(
    floor_commits=3000,
    sagakit_sequential=1000,
    sagakit_concurrent=5000,
    dbos_sequential=300,
    dbos_concurrent=600,
    baseline_sequential=1000,
    baseline_concurrent=2000,
    paired_rounds=12,
    paired_sagas_per_round=50,
    recovery_sagas=10_000,
    memory_small=10_000,
    memory_large=100_000,
    warmup=50,
)

QUICK = Sizes(
    floor_commits=200,
    sagakit_sequential=100,
    sagakit_concurrent=300,
    dbos_sequential=30,
    dbos_concurrent=60,
    baseline_sequential=100,
    baseline_concurrent=100,
    paired_rounds=4,
    paired_sagas_per_round=10,
    recovery_sagas=300,
    memory_small=300,
    memory_large=1000,
    warmup=10,
    relay_messages=300,
    relay_rounds=2,
    relay_latency_sagas=50,
    machine_instances=300,
    machine_hot_events=200,
    dbos_journals=("wal",),
)


#: Full-run sizes that differ on a server (PostgreSQL, MariaDB), to keep a full run near
#: 20 minutes: the memory case's large sample (sagakit runs about half as many sagas/s at
#: 256 in flight on this machine's PostgreSQL as on SQLite).
POSTGRESQL_FULL_MEMORY_LARGE = 50_000


def sizes_for(
    *,
    quick: bool,
    sagas: int | None = None,
    recovery_sagas: int | None = None,
    memory_sagas: tuple[int, int] | None = None,
    backend: str = "sqlite",
) -> Sizes:
    """Return the sizes for the mode and backend, with command-line overrides applied."""
    sizes = QUICK if quick else FULL
    if backend != "sqlite" and not quick:
        sizes = replace(sizes, memory_large=POSTGRESQL_FULL_MEMORY_LARGE)
    if sagas is not None:
        sizes = replace(
            sizes,
            sagakit_sequential=sagas,
            sagakit_concurrent=sagas,
            dbos_sequential=sagas,
            dbos_concurrent=sagas,
            baseline_sequential=sagas,
            baseline_concurrent=sagas,
        )
    if recovery_sagas is not None:
        sizes = replace(sizes, recovery_sagas=recovery_sagas)
    if memory_sagas is not None:
        sizes = replace(sizes, memory_small=memory_sagas[0], memory_large=memory_sagas[1])
    return sizes


@dataclass(frozen=True, slots=True)
class CaseSpec:
    """One case to run in its own process, and where its result goes in the report."""

    group: str
    label: str
    case: str
    params: dict[str, Any]


def _floor(n: int, backend: str) -> list[CaseSpec]:
    sequential = CaseSpec("floor", "sequential", "floor.sequential", {"commits": n})
    if backend == "sqlite":
        return [
            sequential,
            CaseSpec("floor", "concurrent_32_connections", "floor.concurrent", {"commits": n}),
            CaseSpec(
                "floor",
                "concurrent_32_shared_connection",
                "floor.concurrent",
                {"commits": n, "shared": True},
            ),
        ]
    return [
        sequential,
        CaseSpec(
            "floor",
            "sequential_explicit_transaction",
            "floor.sequential",
            {"commits": n, "explicit": True},
        ),
        CaseSpec("floor", "concurrent_32_pool", "floor.concurrent", {"commits": n}),
    ]


def build_plan(sizes: Sizes, groups: tuple[str, ...], backend: str = "sqlite") -> list[CaseSpec]:
    """Return the cases of ``groups`` on ``backend`` in run order."""
    w = sizes.warmup
    plan: list[CaseSpec] = []
    if "floor" in groups:
        plan += _floor(sizes.floor_commits, backend)
    if "sagakit" in groups:
        for k in SAGAKIT_IN_FLIGHT:
            n = sizes.sagakit_sequential if k == 1 else sizes.sagakit_concurrent
            params: dict[str, Any] = {"sagas": n, "in_flight": k, "warmup": w}
            plan.append(CaseSpec("sagakit", f"in_flight_{k}", "sagakit.run", params))
        # step 4 fails, steps 1-3 compensate: 1 + 3 + 1 + 3 checkpoints (start, steps,
        # the failure, the compensations)
        failing = {"sagas": sizes.sagakit_sequential, "in_flight": 1, "warmup": w, "fail_at": 3}
        plan.append(CaseSpec("sagakit", "failing_in_flight_1", "sagakit.run", failing))
        paired = {"rounds": sizes.paired_rounds, "sagas_per_round": sizes.paired_sagas_per_round}
        plan.append(CaseSpec("sagakit", "step_cost_paired", "sagakit.step_cost_paired", paired))
    if "dbos" in groups and backend != "mariadb":  # DBOS keeps its state in PostgreSQL or SQLite
        # SQLite: each journal DBOS may run on; a server has one way to write.
        journals: tuple[str | None, ...] = sizes.dbos_journals if backend == "sqlite" else (None,)
        for journal in journals:
            for mode in ("sync", "async"):
                for k in DBOS_IN_FLIGHT:
                    n = sizes.dbos_sequential if k == 1 else sizes.dbos_concurrent
                    params = {"sagas": n, "in_flight": k, "warmup": w, "mode": mode}
                    label = (
                        f"{mode}_{journal}_in_flight_{k}" if journal else f"{mode}_in_flight_{k}"
                    )
                    plan.append(CaseSpec("dbos", label, "dbos.run", {**params, "journal": journal}))
    if "restate" in groups:  # its own durable log: the same on every backend's table
        for k in RESTATE_IN_FLIGHT:
            n = sizes.dbos_sequential if k == 1 else sizes.dbos_concurrent
            params = {"sagas": n, "in_flight": k, "warmup": w}
            plan.append(CaseSpec("restate", f"in_flight_{k}", "restate.run", params))
    if "baseline" in groups:
        for mode, k in BASELINE_SHAPES:
            n = sizes.baseline_sequential if k == 1 else sizes.baseline_concurrent
            params = {"sagas": n, "in_flight": k, "warmup": w, "mode": mode}
            plan.append(CaseSpec("baseline", f"{mode}_in_flight_{k}", "baseline.run", params))
    if "recovery" in groups:
        for shape in ("midway", "pending"):
            params = {"sagas": sizes.recovery_sagas, "workers": RECOVERY_WORKERS, "shape": shape}
            plan.append(CaseSpec("recovery", shape, "recovery", params))
    if "processes" in groups and backend != "sqlite":  # one file has one writer
        for count in WORKER_PROCESSES:
            params = {"sagas": sizes.sagakit_concurrent, "processes": count, "in_flight": 64}
            plan.append(CaseSpec("processes", f"processes_{count}", "processes", params))
    if "memory" in groups:
        params = {
            "small": sizes.memory_small,
            "large": sizes.memory_large,
            "warmup": max(sizes.memory_small // 10, 1),
            "in_flight": MEMORY_IN_FLIGHT,
        }
        plan.append(CaseSpec("memory", "rss", "memory", params))
    if "relay" in groups:
        messages = {"messages": sizes.relay_messages}
        rounds = {**messages, "per_saga": 3, "rounds": sizes.relay_rounds}
        plan.append(CaseSpec("relay", "throughput", "relay.throughput", rounds))
        plan.append(CaseSpec("relay", "floor_bare", "relay.floor_bare", messages))
        latency = {"sagas": sizes.relay_latency_sagas}
        plan.append(CaseSpec("relay", "latency", "relay.latency", latency))
    if "machines" in groups:
        for k in (1, 64):
            params = {"instances": sizes.machine_instances, "in_flight": k}
            plan.append(CaseSpec("machines", f"events_in_flight_{k}", "machines.events", params))
        hot = {"events": sizes.machine_hot_events, "tasks": 16}
        plan.append(CaseSpec("machines", "hot_instance_16_tasks", "machines.hot", hot))
    if "toolkit" in groups and backend == "sqlite":  # the memory store: one backend is enough
        plan.append(CaseSpec("toolkit", "explore_5_steps", "toolkit.explore", {"rounds": 5}))
    if "floor" in groups and any(spec.group != "floor" for spec in plan):
        # The same floor again at the end: fsync cost drifts on shared disks, so the floor
        # used in ratios is the mean of both and the drift between them is reported.
        n = sizes.floor_commits
        plan.append(CaseSpec("floor", "sequential_repeat", "floor.sequential", {"commits": n}))
    return plan
