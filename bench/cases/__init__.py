"""The benchmark cases, by name. Each takes a ``CaseContext`` and returns a JSON-able dict."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.cases.baseline import baseline_run
from bench.cases.dbos_run import dbos_run
from bench.cases.explore import explore_five_steps
from bench.cases.floor import floor_concurrent, floor_sequential
from bench.cases.machines import machine_events, machine_hot
from bench.cases.memory import memory
from bench.cases.paired import step_cost_paired
from bench.cases.processes import processes
from bench.cases.recovery import recovery
from bench.cases.relay import relay_floor_bare, relay_latency, relay_throughput
from bench.cases.restate_run import restate_run
from bench.cases.sagakit_run import sagakit_run

CASES: dict[str, Callable[..., Any]] = {
    "floor.sequential": floor_sequential,
    "floor.concurrent": floor_concurrent,
    "sagakit.run": sagakit_run,
    "sagakit.step_cost_paired": step_cost_paired,
    "dbos.run": dbos_run,
    "baseline.run": baseline_run,
    "recovery": recovery,
    "processes": processes,
    "memory": memory,
    "toolkit.explore": explore_five_steps,
    "machines.events": machine_events,
    "machines.hot": machine_hot,
    "restate.run": restate_run,
    "relay.floor_bare": relay_floor_bare,
    "relay.throughput": relay_throughput,
    "relay.latency": relay_latency,
}
