"""SagaMetrics counts a known run exactly, reads in-flight sagas from the database, serves HTTP."""

from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys
import urllib.request
from datetime import timedelta
from typing import Any

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

import sagakit as sk
from sagakit.observability.metrics import (
    CONTENT_TYPE,
    EXPOSED,
    SagaMetrics,
    count_active_by_type,
)
from sagakit.store.records import utcnow

from .conftest import FAST, PaymentDeclined, order_saga, refund_saga, run_known

ERROR_TYPE = f"{PaymentDeclined.__module__}.{PaymentDeclined.__qualname__}"


def value(metrics: SagaMetrics, name: str, **labels: str) -> float | None:
    """One sample's value from the registry, or None if it is not exposed."""
    return metrics.registry.get_sample_value(name, labels)


#: The order of label values in the keys ``samples`` returns.
LABELS = ("saga_type", "step_name", "error_type", "reason", "le")


def samples(text: str | bytes, name: str) -> dict[tuple[str, ...], float]:
    """Every sample called ``name`` in an exposition, keyed by its label values (``LABELS``)."""
    if isinstance(text, bytes):
        text = text.decode()
    return {
        tuple(s.labels[k] for k in LABELS if k in s.labels): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


@pytest.fixture
async def run(db_url: str) -> SagaMetrics:
    """The known run, watched by a SagaMetrics."""
    metrics = SagaMetrics()
    await run_known(db_url, metrics)
    return metrics


async def test_saga_counters_count_each_outcome_per_type(run: SagaMetrics) -> None:
    # Given the known run, I expect one count per saga and outcome
    expected = {
        "saga_started_total": {"order": 5, "refund": 1},
        "saga_completed_total": {"order": 3, "refund": 1},
        "saga_failed_total": {"order": 1, "refund": 0},
    }
    for name, by_type in expected.items():
        for saga_type, count in by_type.items():
            assert value(run, name, saga_type=saga_type) == count, (name, saga_type)
    # compensations by why: the known run's one rollback followed a step error
    for saga_type, count in {"order": 1, "refund": 0}.items():
        assert value(run, "saga_compensated_total", saga_type=saga_type, reason="error") == count


async def test_histograms_observe_each_finished_saga_and_completed_step(run: SagaMetrics) -> None:
    assert value(run, "saga_duration_seconds_count", saga_type="order") == 5
    assert value(run, "saga_duration_seconds_count", saga_type="refund") == 1
    assert (value(run, "saga_duration_seconds_sum", saga_type="order") or 0) > 0
    text = run.render()
    # reserve and charge completed in all five orders, ship in the three that completed
    assert samples(text, "saga_step_duration_seconds_count") == {
        ("order", "reserve"): 5,
        ("order", "charge"): 5,
        ("order", "ship"): 3,
        ("refund", "refund"): 1,
    }
    labels = {"saga_type": "order", "step_name": "ship", "le": "+Inf"}
    assert value(run, "saga_step_duration_seconds_bucket", **labels) == 3


async def test_step_failures_carry_step_and_error_type_and_retries_are_counted(
    run: SagaMetrics,
) -> None:
    text = run.render()
    # charge failed once in a3; ship failed all three attempts in a4 and in a5
    assert samples(text, "saga_step_failed_total") == {
        ("order", "charge", ERROR_TYPE): 1,
        ("order", "ship", "builtins.RuntimeError"): 6,
    }
    # every failed attempt but the last of each saga is retried, compensations included
    assert samples(text, "saga_retries_total") == {
        ("order", "charge"): 1,
        ("order", "ship"): 4,
        ("order", "reserve"): 2,
    }
    # a4 undid charge and reserve; a5 undid charge, then reserve's undo failed for good
    assert samples(text, "saga_compensation_executed_total") == {
        ("order", "charge"): 2,
        ("order", "reserve"): 1,
    }


async def test_the_exposition_has_exactly_the_documented_metric_families(
    run: SagaMetrics, db_url: str
) -> None:
    # Given the known run and a refresh from its database
    async with sk.Runtime(db_url, sagas=[order_saga(), refund_saga()]) as rt:
        await run.refresh(rt.store)
    # When I read the TYPE lines of the exposition
    text = run.render().decode()
    families = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    # I expect the documented names (prometheus_client adds a *_created gauge per counter
    # and histogram)
    assert {f for f in families if not f.endswith("_created")} == set(EXPOSED)


async def test_refresh_counts_pending_sagas_from_the_database_for_every_process(
    run: SagaMetrics, db_url: str
) -> None:
    # Given sagas started with no worker running them (PENDING)
    web = SagaMetrics()  # another process's metrics: it saw none of the run
    async with sk.Runtime(db_url, sagas=[order_saga(), refund_saga()], workers=0) as rt:
        for i in range(2):
            await rt.start("order", saga_id=f"p{i}")
        await rt.start("refund", saga_id="p-refund")
        # When each process refreshes from the database
        await run.refresh(rt.store)
        await web.refresh(rt.store)
        # I expect both to read the same in-flight counts
        for metrics in (run, web):
            assert value(metrics, "saga_running_current", saga_type="order") == 2
            assert value(metrics, "saga_running_current", saga_type="refund") == 1
        # and, once a worker drains them, zeros rather than missing series
        await sk.Worker(rt.store, rt.sagas, leases=rt.leases).run(burst=True)
        await web.refresh(rt.store)
    assert value(web, "saga_running_current", saga_type="order") == 0
    assert value(web, "saga_running_current", saga_type="refund") == 0


async def test_refresh_counts_running_and_compensating_sagas(db_url: str) -> None:
    # Given one saga blocked in a step and one blocked in a compensation
    step_gate, undo_gate = asyncio.Event(), asyncio.Event()
    inside: dict[str, asyncio.Event] = {"step": asyncio.Event(), "undo": asyncio.Event()}
    saga = sk.Saga("slow", retry=FAST)

    @saga.step
    async def first(ctx: sk.StepContext) -> None:
        if ctx.get("mode") == "step":
            inside["step"].set()
            await step_gate.wait()

    @first.compensation
    async def undo_first(ctx: sk.StepContext) -> None:
        inside["undo"].set()
        await undo_gate.wait()

    @saga.step(retry=sk.Retry(max_attempts=1))
    async def second(ctx: sk.StepContext) -> None:
        if ctx.get("mode") == "undo":
            raise RuntimeError("roll back")

    metrics = SagaMetrics()
    async with sk.Runtime(db_url, sagas=[saga], hooks=[metrics]) as rt:
        running = asyncio.create_task(rt.run("slow", {"mode": "step"}))
        compensating = asyncio.create_task(rt.run("slow", {"mode": "undo"}))
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in inside.values())), 10)
        statuses = sorted(r.status for r in await rt.list())
        assert statuses == [sk.SagaStatus.COMPENSATING, sk.SagaStatus.RUNNING]
        # When I refresh
        await metrics.refresh(rt.store)
        # I expect both counted
        assert value(metrics, "saga_running_current", saga_type="slow") == 2
        step_gate.set()
        undo_gate.set()
        await asyncio.gather(running, compensating)
        await metrics.refresh(rt.store)
    assert value(metrics, "saga_running_current", saga_type="slow") == 0


async def test_counting_in_flight_sagas_counts_each_type(db_url: str) -> None:
    async with sk.Runtime(db_url, sagas=[order_saga(), refund_saga()], workers=0) as rt:
        for i in range(5):
            await rt.start("order", saga_id=f"o{i}")
        for i in range(2):
            await rt.start("refund", saga_id=f"r{i}")
        await rt.run("refund", saga_id="done")  # finished: not counted
        assert await count_active_by_type(rt.store) == {"order": 5, "refund": 2}
        # the port's default (paging through every saga) agrees with the store's own
        assert await sk.SagaStore.count_by_type(rt.store) == await rt.store.count_by_type()


def test_duration_runs_from_creation_to_completion_even_if_resumed() -> None:
    # Given a saga created two hours ago and resumed by this process, which ran it 0.5 s
    metrics = SagaMetrics()
    now = utcnow()
    record = sk.SagaRecord(
        id="x",
        saga_type="order",
        status=sk.SagaStatus.COMPLETED,
        created_at=now - timedelta(hours=2),
        completed_at=now,
    )
    metrics.saga_finished(record, 0.5)
    # I expect the whole two hours observed
    assert value(metrics, "saga_duration_seconds_sum", saga_type="order") == 7200
    assert value(metrics, "saga_duration_seconds_bucket", saga_type="order", le="3600.0") == 0
    # and a paused saga not counted as finished
    record.status, record.completed_at = sk.SagaStatus.PAUSED, None
    metrics.saga_finished(record, 0.5)
    assert value(metrics, "saga_duration_seconds_count", saga_type="order") == 1


async def test_metrics_are_scraped_over_http(run: SagaMetrics, db_url: str) -> None:
    # Given the known run's metrics served by prometheus_client's HTTP server
    async with sk.Runtime(db_url, sagas=[order_saga(), refund_saga()]) as rt:
        await run.refresh(rt.store)
    server, thread = prometheus_client.start_http_server(0, addr="127.0.0.1", registry=run.registry)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        # When Prometheus scrapes it
        with await asyncio.to_thread(urllib.request.urlopen, url, timeout=10) as response:
            content_type = response.headers["Content-Type"]
            body = response.read()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    # I expect the counts of the known run
    assert content_type.startswith("text/plain")
    assert samples(body, "saga_started_total") == {("order",): 5, ("refund",): 1}
    assert samples(body, "saga_completed_total") == {("order",): 3, ("refund",): 1}
    assert samples(body, "saga_compensated_total") == {
        ("order", "error"): 1,
        ("refund", "error"): 0,
    }
    assert samples(body, "saga_failed_total") == {("order",): 1, ("refund",): 0}
    assert samples(body, "saga_running_current") == {("order",): 0, ("refund",): 0}
    assert samples(body, "saga_duration_seconds_count") == {("order",): 5, ("refund",): 1}
    assert samples(body, "saga_step_failed_total")[("order", "ship", "builtins.RuntimeError")] == 6
    # and render() gives what the HTTP server gave, under CONTENT_TYPE
    assert CONTENT_TYPE == prometheus_client.CONTENT_TYPE_LATEST
    assert samples(run.render(), "saga_started_total") == samples(body, "saga_started_total")


def test_instances_have_their_own_registries_and_touch_no_global_one() -> None:
    before = set(prometheus_client.REGISTRY._names_to_collectors)
    first, second = SagaMetrics(), SagaMetrics()
    assert first.registry is not second.registry
    assert set(prometheus_client.REGISTRY._names_to_collectors) == before
    shared = prometheus_client.CollectorRegistry()
    assert SagaMetrics(shared).registry is shared


def test_importing_sagakit_imports_no_optional_dependency() -> None:
    code = (
        "import sys, sagakit, sagakit.observability\n"
        "assert 'prometheus_client' not in sys.modules, 'prometheus_client'\n"
        "assert 'opentelemetry' not in sys.modules, 'opentelemetry'\n"
        "from sagakit.observability import SagaMetrics\n"
        "assert 'prometheus_client' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_without_prometheus_client_the_error_names_the_extra(monkeypatch: Any) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "sagakit.observability.metrics")
    with pytest.raises(ImportError, match=r"pip install sagakit\[metrics\]"):
        importlib.import_module("sagakit.observability.metrics")
