"""OpenTelemetry spans as engine hooks: one span per saga, a child span per step and compensation.

The hooks run after the fact, so step spans are recorded retroactively from the
duration the engine measured (they end when the step's checkpoint is written, and
are not current while the step's own code runs). A failed attempt has no duration in
its hook; it is recorded as an exception event on the saga span.

A saga span lives in the process that runs the saga: it opens when the saga starts
there (``rt.run``) or when that process first advances it (a worker), and ends when the
saga finishes. ``rt.start`` only adds an event to the caller's current span.

Needs ``opentelemetry-api`` (``pip install sagakit[otel]``); with no SDK configured,
every span is a no-op.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from .. import __version__
from ..checkpoint import describe_error
from ..hooks import SagaHooks
from ..status import Reason, SagaStatus
from ..store.records import SagaRecord

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import Span, Status, StatusCode, TracerProvider
except ImportError as e:
    raise ImportError(
        "sagakit.observability.tracing needs opentelemetry-api; "
        "install it with `pip install sagakit[otel]`"
    ) from e

__all__ = ["SagaTracing"]

#: Reasons for a rollback that are a failure, rather than a caller's or operator's choice.
_FAILURE_REASONS = frozenset({Reason.ERROR, Reason.TIMEOUT})


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _attributes(saga: SagaRecord) -> dict[str, str]:
    return {"sagakit.saga.id": saga.id, "sagakit.saga.type": saga.saga_type}


class SagaTracing(SagaHooks):
    """Record each saga and its steps as OpenTelemetry spans: ``Runtime(hooks=[SagaTracing()])``.

    ``tracer_provider`` defaults to the global one. At most ``max_open`` saga spans are
    kept open; a saga this process stops advancing without finishing it (released to a
    durable timer that another worker takes, or taken over by another writer) has its
    span ended, with status ``UNKNOWN``, once that many newer sagas are open.
    """

    def __init__(
        self, tracer_provider: TracerProvider | None = None, *, max_open: int = 10_000
    ) -> None:
        self.tracer = trace.get_tracer("sagakit", __version__, tracer_provider)
        self.max_open = max_open
        self._open: OrderedDict[str, Span] = OrderedDict()

    def _saga_span(self, saga: SagaRecord, began: int, *, resumed: bool = True) -> Span:
        """Return the saga's open span, opening it (as a new trace) if this is its first hook."""
        span = self._open.get(saga.id)
        if span is not None:
            return span
        span = self.tracer.start_span(
            f"saga {saga.saga_type}",
            # a worker's task inherits whatever span opened the Runtime: not a parent
            context=otel_context.Context() if resumed else None,
            start_time=began,
            attributes={**_attributes(saga), "sagakit.saga.resumed": resumed},
        )
        self._open[saga.id] = span
        while len(self._open) > self.max_open:
            _, oldest = self._open.popitem(last=False)
            oldest.set_attribute("sagakit.saga.status", "UNKNOWN")
            oldest.end()
        return span

    def _child(self, saga: SagaRecord, name: str, step: str, seconds: float) -> None:
        end = time.time_ns()
        start = end - _ns(seconds)
        parent = self._saga_span(saga, start)
        span = self.tracer.start_span(
            name,
            context=trace.set_span_in_context(parent),
            start_time=start,
            attributes={**_attributes(saga), "sagakit.step.name": step},
        )
        span.end(end_time=end)

    def _failed(
        self, saga: SagaRecord, what: str, step: str, error: BaseException, will_retry: bool
    ) -> None:
        parent = self._saga_span(saga, time.time_ns())
        parent.record_exception(
            error,
            attributes={
                "sagakit.step.name": step,
                "sagakit.step.phase": what,
                "sagakit.step.attempt": saga.attempt,
                "sagakit.step.will_retry": will_retry,
                "error.type": describe_error(error)["type"],
            },
        )

    # -- hooks ----------------------------------------------------------------------------

    def saga_started(self, saga: SagaRecord) -> None:
        """Open the saga's span under the caller's, or note the enqueue on the caller's span."""
        if saga.status == SagaStatus.PENDING:
            trace.get_current_span().add_event("sagakit.saga_enqueued", _attributes(saga))
            return
        began = int(saga.created_at.timestamp() * 1e9)
        self._saga_span(saga, min(began, time.time_ns()), resumed=False)

    def step_completed(self, saga: SagaRecord, step: str, seconds: float) -> None:
        """Record a ``step <name>`` span ending now that lasted ``seconds``."""
        self._child(saga, f"step {step}", step, seconds)

    def step_failed(
        self, saga: SagaRecord, step: str, error: BaseException, *, will_retry: bool
    ) -> None:
        """Record the failed attempt as an exception event on the saga span."""
        self._failed(saga, "step", step, error, will_retry)

    def compensation_completed(self, saga: SagaRecord, step: str, seconds: float) -> None:
        """Record a ``compensate <name>`` span ending now that lasted ``seconds``."""
        self._child(saga, f"compensate {step}", step, seconds)

    def compensation_failed(
        self, saga: SagaRecord, step: str, error: BaseException, *, will_retry: bool
    ) -> None:
        """Record the failed compensation attempt as an exception event on the saga span."""
        self._failed(saga, "compensation", step, error, will_retry)

    def saga_finished(self, saga: SagaRecord, seconds: float | None) -> None:
        """End the saga's span with its status: OK when completed, ERROR when it failed."""
        end = time.time_ns()
        span = self._open.pop(saga.id, None)
        if span is None:  # finished without a step hook in this process
            span = self._saga_span(saga, end - _ns(seconds or 0.0))
            self._open.pop(saga.id, None)
        span.set_attribute("sagakit.saga.status", saga.status.value)
        if saga.reason is not None:
            span.set_attribute("sagakit.saga.reason", saga.reason.value)
        if saga.status == SagaStatus.COMPLETED:
            span.set_status(Status(StatusCode.OK))
        elif saga.status == SagaStatus.FAILED:
            span.set_status(Status(StatusCode.ERROR, f"FAILED: {saga.error_type}"))
        elif saga.status == SagaStatus.COMPENSATED and saga.reason in _FAILURE_REASONS:
            span.set_status(Status(StatusCode.ERROR, f"COMPENSATED ({saga.reason})"))
        span.end(end_time=end)
