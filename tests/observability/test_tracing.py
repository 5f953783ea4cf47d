"""SagaTracing records a span per saga and per step, under any OpenTelemetry provider."""

from __future__ import annotations

import importlib
import itertools
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags

import sagakit as sk
from sagakit.observability.tracing import SagaTracing

from .conftest import PaymentDeclined, refund_saga, run_known

ERROR_TYPE = f"{PaymentDeclined.__module__}.{PaymentDeclined.__qualname__}"


# -- with the SDK's in-memory exporter ---------------------------------------------------


@pytest.fixture
def sdk() -> Any:
    """A TracerProvider whose finished spans are kept in memory (not the global provider)."""
    pytest.importorskip(
        "opentelemetry.sdk.trace", reason="opentelemetry-sdk belongs in the dev extra"
    )
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.exporter = exporter  # type: ignore[attr-defined]
    return provider


def by_saga(spans: Sequence[Any]) -> dict[str, list[Any]]:
    """Finished spans grouped by saga id, in the order they ended."""
    grouped: dict[str, list[Any]] = {}
    for span in spans:
        grouped.setdefault(span.attributes["sagakit.saga.id"], []).append(span)
    return grouped


def failures(span: Any) -> list[tuple[str, str, int, bool, str]]:
    """(phase, step, attempt, will_retry, error type) of each exception event on ``span``."""
    return [
        (
            e.attributes["sagakit.step.phase"],
            e.attributes["sagakit.step.name"],
            e.attributes["sagakit.step.attempt"],
            e.attributes["sagakit.step.will_retry"],
            e.attributes["error.type"],
        )
        for e in span.events
        if e.name == "exception"
    ]


async def test_each_saga_is_one_trace_with_a_child_span_per_step(sdk: Any, db_url: str) -> None:
    # Given the known run traced
    await run_known(db_url, SagaTracing(sdk))
    sagas = by_saga(sdk.exporter.get_finished_spans())
    # I expect, per saga, child spans then the saga span, all in one trace
    names = {saga_id: [s.name for s in spans] for saga_id, spans in sagas.items()}
    assert names == {
        "a1": ["step reserve", "step charge", "step ship", "saga order"],
        "a2": ["step reserve", "step charge", "step ship", "saga order"],
        "a3": ["step reserve", "step charge", "step ship", "saga order"],
        "a4": [
            "step reserve",
            "step charge",
            "compensate charge",
            "compensate reserve",
            "saga order",
        ],
        "a5": ["step reserve", "step charge", "compensate charge", "saga order"],
        "r1": ["step refund", "saga refund"],
    }
    for spans in sagas.values():
        *children, root = spans
        assert root.parent is None
        for child in children:
            assert child.parent.span_id == root.context.span_id
            assert child.context.trace_id == root.context.trace_id
            assert root.start_time <= child.start_time <= child.end_time <= root.end_time


async def test_saga_spans_carry_outcome_status_and_failed_attempts(sdk: Any, db_url: str) -> None:
    await run_known(db_url, SagaTracing(sdk))
    roots = {sid: spans[-1] for sid, spans in by_saga(sdk.exporter.get_finished_spans()).items()}
    assert {sid: r.status.status_code for sid, r in roots.items()} == {
        "a1": StatusCode.OK,
        "a2": StatusCode.OK,
        "a3": StatusCode.OK,
        "a4": StatusCode.ERROR,
        "a5": StatusCode.ERROR,
        "r1": StatusCode.OK,
    }
    assert roots["a4"].attributes["sagakit.saga.status"] == "COMPENSATED"
    assert roots["a4"].attributes["sagakit.saga.reason"] == "error"
    assert roots["a5"].attributes["sagakit.saga.status"] == "FAILED"
    assert failures(roots["a3"]) == [("step", "charge", 1, True, ERROR_TYPE)]
    ship = [("step", "ship", n, n < 3, "builtins.RuntimeError") for n in (1, 2, 3)]
    assert failures(roots["a4"]) == ship
    undo = [("compensation", "reserve", n, n < 3, "builtins.RuntimeError") for n in (1, 2, 3)]
    assert failures(roots["a5"]) == ship + undo
    # run inline by rt.run vs. picked up by a worker after rt.start
    assert roots["a1"].attributes["sagakit.saga.resumed"] is False
    assert roots["r1"].attributes["sagakit.saga.resumed"] is True


async def test_rt_run_nests_under_the_callers_span_and_rt_start_marks_it(
    sdk: Any, db_url: str
) -> None:
    tracer = sdk.get_tracer("app")
    async with sk.Runtime(db_url, sagas=[refund_saga()], hooks=[SagaTracing(sdk)], workers=0) as rt:
        with tracer.start_as_current_span("POST /refunds"):
            await rt.run("refund", saga_id="inline")
            await rt.start("refund", saga_id="queued")
    spans = {s.name: s for s in sdk.exporter.get_finished_spans()}
    request, saga = spans["POST /refunds"], spans["saga refund"]
    assert saga.parent.span_id == request.context.span_id
    assert [(e.name, e.attributes["sagakit.saga.id"]) for e in request.events] == [
        ("sagakit.saga_enqueued", "queued")
    ]


def test_open_saga_spans_are_bounded(sdk: Any) -> None:
    # Given sagas this process advanced and then lost (no saga_finished)
    tracing = SagaTracing(sdk, max_open=2)
    for i in range(3):
        tracing.step_completed(sk.SagaRecord(id=f"s{i}", saga_type="t"), "one", 0.01)
    # I expect the oldest saga span ended as UNKNOWN, the newest two still open
    ended = [s for s in sdk.exporter.get_finished_spans() if s.name == "saga t"]
    assert [
        (s.attributes["sagakit.saga.id"], s.attributes["sagakit.saga.status"]) for s in ended
    ] == [("s0", "UNKNOWN")]
    assert list(tracing._open) == ["s1", "s2"]


# -- with any provider implementing the API ----------------------------------------------


_IDS = itertools.count(1)


class FakeSpan(trace.Span):
    """A recording span that keeps what it is told, for the API-only test."""

    def __init__(
        self, name: str, parent: SpanContext | None, start: int, attributes: Mapping[str, Any]
    ) -> None:
        self.name, self.parent, self.start, self.end_time = name, parent, start, None
        self.attributes = dict(attributes)
        self.events: list[str] = []
        self.status: Status | None = None
        trace_id = parent.trace_id if parent else next(_IDS)
        self.context = SpanContext(trace_id, next(_IDS), False, TraceFlags(1))

    def get_span_context(self) -> SpanContext:
        return self.context

    def end(self, end_time: int | None = None) -> None:
        self.end_time = end_time or time.time_ns()

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        self.attributes.update(attributes)

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value

    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> None:
        self.events.append(name)

    def update_name(self, name: str) -> None:
        self.name = name

    def is_recording(self) -> bool:
        return self.end_time is None

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        self.status = status if isinstance(status, Status) else Status(status, description)

    def record_exception(self, exception: BaseException, *args: Any, **kwargs: Any) -> None:
        self.events.append(f"exception {type(exception).__name__}")


class FakeTracer(trace.Tracer):
    """Makes FakeSpans, parented by the given (or current) context."""

    def __init__(self) -> None:
        self.spans: list[FakeSpan] = []

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: Any = None,
        links: Any = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> FakeSpan:
        parent = trace.get_current_span(context).get_span_context()
        span = FakeSpan(
            name,
            parent if parent.is_valid else None,
            start_time or time.time_ns(),
            attributes or {},
        )
        self.spans.append(span)
        return span

    @contextmanager
    def start_as_current_span(self, name: str, *args: Any, **kwargs: Any) -> Iterator[FakeSpan]:
        span = self.start_span(name)
        with trace.use_span(span, end_on_exit=True):
            yield span


class FakeProvider(trace.TracerProvider):
    """Hands out one FakeTracer."""

    def __init__(self) -> None:
        self.tracer = FakeTracer()

    def get_tracer(self, *args: Any, **kwargs: Any) -> FakeTracer:
        return self.tracer


async def test_any_api_provider_gets_ended_saga_and_step_spans(db_url: str) -> None:
    provider = FakeProvider()
    await run_known(db_url, SagaTracing(provider))
    spans = provider.tracer.spans
    assert all(s.end_time is not None for s in spans)
    roots = {s.attributes["sagakit.saga.id"]: s for s in spans if s.name.startswith("saga ")}
    assert sorted(roots) == ["a1", "a2", "a3", "a4", "a5", "r1"]
    for span in spans:
        root = roots[span.attributes["sagakit.saga.id"]]
        if span is not root:
            assert span.parent == root.context
            assert root.start <= span.start <= span.end_time <= (root.end_time or 0)
    assert roots["a5"].status is not None and roots["a5"].status.status_code == StatusCode.ERROR
    assert roots["a3"].events == ["exception PaymentDeclined"]


def test_without_opentelemetry_the_error_names_the_extra(monkeypatch: Any) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.delitem(sys.modules, "sagakit.observability.tracing")
    with pytest.raises(ImportError, match=r"pip install sagakit\[otel\]"):
        importlib.import_module("sagakit.observability.tracing")
