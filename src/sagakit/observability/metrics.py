"""Prometheus metrics as engine hooks: event counters per process, in-flight gauges from the store.

Counters and histograms count what *this* process saw the engine do, so Prometheus sums
them over processes. ``saga_running_current`` is read from the database by
:meth:`SagaMetrics.refresh`, so it is the same in every process that refreshes it:
aggregate it with ``max``, never ``sum``.

Needs ``prometheus-client`` (``pip install sagakit[metrics]``). Importing this module
registers nothing; each :class:`SagaMetrics` owns its metrics in its own registry.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..admin.reports import ACTIVE
from ..checkpoint import describe_error
from ..hooks import SagaHooks
from ..status import Reason, SagaStatus
from ..store.base import SagaStore
from ..store.records import OutboxMessage, SagaRecord, utcnow

try:
    import prometheus_client
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
except ImportError as e:
    raise ImportError(
        "sagakit.observability.metrics needs prometheus-client; "
        "install it with `pip install sagakit[metrics]`"
    ) from e

__all__ = [
    "CONTENT_TYPE",
    "DURATION_BUCKETS",
    "EXPOSED",
    "STEP_BUCKETS",
    "SagaMetrics",
    "count_active_by_type",
]

#: The Content-Type of :meth:`SagaMetrics.render`'s output, for an HTTP ``/metrics`` response.
CONTENT_TYPE: str = prometheus_client.CONTENT_TYPE_LATEST

#: Saga durations run from milliseconds to hours (durable retry timers), so buckets reach a day.
DURATION_BUCKETS: tuple[float, ...] = (
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600,
)  # fmt: skip

#: Step durations: one call to a service or database, up to the longest sensible timeout.
STEP_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
)  # fmt: skip

#: Every metric family this module exposes, as Prometheus sees it (counters end in ``_total``).
EXPOSED: tuple[str, ...] = (
    "saga_started_total",
    "saga_completed_total",
    "saga_failed_total",
    "saga_compensated_total",
    "saga_duration_seconds",
    "saga_running_current",
    "saga_step_duration_seconds",
    "saga_step_failed_total",
    "saga_compensation_executed_total",
    "saga_retries_total",
    "saga_outbox_published_total",
    "saga_outbox_failed_total",
    "saga_outbox_dead_total",
    "saga_inbox_duplicates_total",
    "saga_outbox_pending",
    "saga_outbox_dead_current",
    "saga_outbox_oldest_age_seconds",
    "saga_machine_events_total",
    "saga_machine_conflicts_total",
    "saga_machine_instances",
)


async def count_active_by_type(store: SagaStore) -> dict[str, int]:
    """Count PENDING, RUNNING and COMPENSATING sagas per saga type (one GROUP BY on SQL)."""
    counts: dict[str, int] = {}
    for (saga_type, status), n in (await store.count_by_type()).items():
        if status in ACTIVE:
            counts[saga_type] = counts.get(saga_type, 0) + n
    return counts


def _saga_seconds(saga: SagaRecord, seconds: float | None) -> float | None:
    """Return how long the saga took from creation to its end, as the reports compute it.

    The engine's ``seconds`` covers only the run in this process; a saga resumed after a
    crash or a durable retry timer began earlier, so the stored timestamps come first.
    """
    if saga.completed_at is not None:
        elapsed = (saga.completed_at - saga.created_at).total_seconds()
        if elapsed >= 0:  # clocks of different hosts may disagree
            return elapsed
    return seconds


class SagaMetrics(SagaHooks):
    """Prometheus metrics for every saga the engine runs: ``Runtime(hooks=[SagaMetrics()])``.

    Without ``registry`` the metrics live in a registry of their own (never the global
    one), so several runtimes or tests cannot collide; pass
    ``prometheus_client.REGISTRY`` to serve them beside other metrics of the process.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        duration_buckets: Iterable[float] = DURATION_BUCKETS,
        step_buckets: Iterable[float] = STEP_BUCKETS,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        saga, step = ["saga_type"], ["saga_type", "step_name"]
        self.saga_started_total = Counter("saga_started", "Sagas started.", saga, registry=reg)
        self.saga_completed_total = Counter(
            "saga_completed", "Sagas that completed every step.", saga, registry=reg
        )
        self.saga_failed_total = Counter(
            "saga_failed",
            "Sagas that went FAILED: a compensation failed past its retries.",
            saga,
            registry=reg,
        )
        self.saga_compensated_total = Counter(
            "saga_compensated",
            "Sagas whose completed steps were all undone, by why (error, timeout, cancelled...).",
            [*saga, "reason"],
            registry=reg,
        )
        self.saga_duration_seconds = Histogram(
            "saga_duration_seconds",
            "Seconds from a saga's creation to its end (completed, compensated or failed).",
            saga,
            buckets=tuple(duration_buckets),
            registry=reg,
        )
        self.saga_running_current = Gauge(
            "saga_running_current",
            "Sagas in flight (PENDING, RUNNING or COMPENSATING) in the database.",
            saga,
            registry=reg,
        )
        self.saga_step_duration_seconds = Histogram(
            "saga_step_duration_seconds",
            "Seconds a completed step's action took.",
            step,
            buckets=tuple(step_buckets),
            registry=reg,
        )
        self.saga_step_failed_total = Counter(
            "saga_step_failed",
            "Failed step attempts, retried or not.",
            [*step, "error_type"],
            registry=reg,
        )
        self.saga_compensation_executed_total = Counter(
            "saga_compensation_executed", "Compensations that completed.", step, registry=reg
        )
        self.saga_retries_total = Counter(
            "saga_retries",
            "Failed step or compensation attempts that will be retried.",
            step,
            registry=reg,
        )
        self.saga_outbox_published_total = Counter(
            "saga_outbox_published", "Outbox messages the broker confirmed.", registry=reg
        )
        self.saga_outbox_failed_total = Counter(
            "saga_outbox_failed", "Failed attempts to publish an outbox message.", registry=reg
        )
        self.saga_outbox_dead_total = Counter(
            "saga_outbox_dead", "Outbox messages that used every attempt.", registry=reg
        )
        self.saga_inbox_duplicates_total = Counter(
            "saga_inbox_duplicates",
            "Messages a consumer was given again and recognised by its inbox.",
            ["consumer"],
            registry=reg,
        )
        self.saga_outbox_pending = Gauge(
            "saga_outbox_pending",
            "Outbox messages not yet published (from the database).",
            registry=reg,
        )
        self.saga_outbox_dead_current = Gauge(
            "saga_outbox_dead_current",
            "Dead outbox messages waiting for `sagakit outbox retry` (from the database).",
            registry=reg,
        )
        self.saga_outbox_oldest_age_seconds = Gauge(
            "saga_outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox message; 0 when none (from the database).",
            registry=reg,
        )
        self.saga_machine_events_total = Counter(
            "saga_machine_events",
            "State machine events by outcome (applied, unhandled, faulted, held, duplicate...).",
            ["machine", "event", "state", "outcome"],
            registry=reg,
        )
        self.saga_machine_conflicts_total = Counter(
            "saga_machine_conflicts",
            "State machine writes another process won first, each retried.",
            ["machine"],
            registry=reg,
        )
        self.saga_machine_instances = Gauge(
            "saga_machine_instances",
            "Active state machine instances by state (from the database).",
            ["machine", "state"],
            registry=reg,
        )
        self._types: set[str] = set()
        self._states: set[tuple[str, str]] = set()

    def _seen(self, saga_type: str) -> None:
        """Export zeros for a new type's saga counters, so ratios over them exist from the start."""
        if saga_type not in self._types:
            self._types.add(saga_type)
            for counter in (
                self.saga_started_total,
                self.saga_completed_total,
                self.saga_failed_total,
            ):
                counter.labels(saga_type)
            # the rollback-storm alert divides by this series: it must exist before a storm
            self.saga_compensated_total.labels(saga_type, Reason.ERROR.value)

    # -- hooks ----------------------------------------------------------------------------

    def saga_started(self, saga: SagaRecord) -> None:
        """Count the saga as started."""
        self._seen(saga.saga_type)
        self.saga_started_total.labels(saga.saga_type).inc()

    def step_completed(self, saga: SagaRecord, step: str, seconds: float) -> None:
        """Observe the step's duration."""
        self._seen(saga.saga_type)
        self.saga_step_duration_seconds.labels(saga.saga_type, step).observe(seconds)

    def step_failed(
        self, saga: SagaRecord, step: str, error: BaseException, *, will_retry: bool
    ) -> None:
        """Count the failed attempt by error type, and the retry if one follows."""
        self._seen(saga.saga_type)
        error_type = describe_error(error)["type"]
        self.saga_step_failed_total.labels(saga.saga_type, step, error_type).inc()
        if will_retry:
            self.saga_retries_total.labels(saga.saga_type, step).inc()

    def compensation_completed(self, saga: SagaRecord, step: str, seconds: float) -> None:
        """Count the compensation."""
        self._seen(saga.saga_type)
        self.saga_compensation_executed_total.labels(saga.saga_type, step).inc()

    def compensation_failed(
        self, saga: SagaRecord, step: str, error: BaseException, *, will_retry: bool
    ) -> None:
        """Count the retry if one follows (a final failure is counted as the saga failing)."""
        self._seen(saga.saga_type)
        if will_retry:
            self.saga_retries_total.labels(saga.saga_type, step).inc()

    def saga_finished(self, saga: SagaRecord, seconds: float | None) -> None:
        """Count the outcome and observe the duration; a paused saga has not finished."""
        self._seen(saga.saga_type)
        if saga.status == SagaStatus.COMPENSATED:
            reason = saga.reason.value if saga.reason else Reason.ERROR.value
            self.saga_compensated_total.labels(saga.saga_type, reason).inc()
        elif saga.status == SagaStatus.COMPLETED:
            self.saga_completed_total.labels(saga.saga_type).inc()
        elif saga.status == SagaStatus.FAILED:
            self.saga_failed_total.labels(saga.saga_type).inc()
        else:
            return
        elapsed = _saga_seconds(saga, seconds)
        if elapsed is not None:
            self.saga_duration_seconds.labels(saga.saga_type).observe(elapsed)

    def messages_published(self, messages: list[OutboxMessage]) -> None:
        self.saga_outbox_published_total.inc(len(messages))

    def message_failed(self, message: OutboxMessage, error: BaseException, *, dead: bool) -> None:
        self.saga_outbox_failed_total.inc()
        if dead:
            self.saga_outbox_dead_total.inc()

    def message_duplicate(self, consumer: str, message_id: str) -> None:
        self.saga_inbox_duplicates_total.labels(consumer).inc()

    def event_delivered(
        self, machine: str, event: str, state: str | None, outcome: str, conflicts: int
    ) -> None:
        self.saga_machine_events_total.labels(machine, event, state or "", outcome).inc()
        if conflicts:
            self.saga_machine_conflicts_total.labels(machine).inc(conflicts)

    # -- exposition -----------------------------------------------------------------------

    async def refresh(self, store: SagaStore, machines: Iterable[str] = ()) -> None:
        """Set ``saga_running_current`` per saga type and the outbox gauges from ``store``.

        With ``machines`` (state machine names), ``saga_machine_instances`` too. Types and
        states counted before that have nothing now are set to 0 rather than dropped, so
        their series stays continuous.
        """
        for machine in machines:
            active = {
                (machine, state or ""): n
                for (status, state), n in (await store.count_by_state(machine)).items()
                if status == SagaStatus.ACTIVE
            }
            self._states |= set(active)
            for key in [k for k in self._states if k[0] == machine]:
                self.saga_machine_instances.labels(*key).set(active.get(key, 0))
        counts = await count_active_by_type(store)
        for saga_type in counts:
            self._seen(saga_type)
        for saga_type in list(self._types):
            self.saga_running_current.labels(saga_type).set(counts.get(saga_type, 0))
        backlog = await store.outbox_backlog()
        self.saga_outbox_pending.set(backlog.pending)
        self.saga_outbox_dead_current.set(backlog.dead)
        oldest = backlog.oldest_pending_at
        self.saga_outbox_oldest_age_seconds.set(
            max((utcnow() - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
        )

    def render(self) -> bytes:
        """Return the registry in the Prometheus text format (serve it as ``CONTENT_TYPE``)."""
        return prometheus_client.generate_latest(self.registry)
