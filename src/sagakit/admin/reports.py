"""What operators ask of a store: counts, success rate, durations, stuck sagas, health.

The CLI, the HTTP API and the dashboard all answer from here, so they always agree.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..status import RUNNABLE, TERMINAL, Reason, SagaStatus
from ..store.base import SagaStore
from ..store.records import SagaQuery, SagaRecord, utcnow

#: Statuses that are still in progress, in which a saga can be stuck.
ACTIVE: tuple[SagaStatus, ...] = tuple(sorted(RUNNABLE))

#: How many recently finished sagas the duration percentiles are computed over.
DURATION_SAMPLE = 10_000


def percentile(values: list[float], fraction: float) -> float | None:
    """Return the ``fraction`` percentile (nearest rank) of ``values``, or None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(fraction * len(ordered)) - 1, 0)
    return ordered[min(rank, len(ordered) - 1)]


@dataclass(slots=True)
class SagaStats:
    """Counts by status and type, success rate, and duration percentiles."""

    by_status: dict[str, int]
    by_type: dict[str, dict[str, int]]
    #: Finished sagas off the happy path by status and reason: ``{"COMPENSATED": {"error": 3}}``.
    by_reason: dict[str, dict[str, int]]
    total: int
    success_rate: float | None
    p50_seconds: float | None
    p95_seconds: float | None
    sampled: int

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for JSON."""
        return asdict(self)


async def stats(store: SagaStore, *, sample: int = DURATION_SAMPLE) -> SagaStats:
    """Summarise the store: how many sagas are where, how often they succeed, how long."""
    by_status = {s.value: n for s, n in (await store.count_by_status()).items()}
    finished = await store.list(SagaQuery(statuses=tuple(TERMINAL), limit=sample))
    by_type: dict[str, dict[str, int]] = {}
    for (saga_type, status), n in (await store.count_by_type()).items():
        by_type.setdefault(saga_type, {})[status.value] = n
    by_reason: dict[str, dict[str, int]] = {}
    for (status, reason), n in (await store.count_by_reason()).items():
        if status in TERMINAL and status != SagaStatus.COMPLETED:
            by_reason.setdefault(status.value, {})[reason or "none"] = n
    done = by_status.get("COMPLETED", 0)
    # a cancelled saga did what it was asked: it is not a failure of the business process
    cancelled = by_reason.get("COMPENSATED", {}).get(Reason.CANCELLED.value, 0)
    ended = sum(by_status.get(s.value, 0) for s in TERMINAL) - cancelled
    durations = [
        (r.completed_at - r.created_at).total_seconds() for r in finished if r.completed_at
    ]
    return SagaStats(
        by_status=by_status,
        by_type=by_type,
        by_reason=by_reason,
        total=sum(by_status.values()),
        success_rate=done / ended if ended else None,
        p50_seconds=percentile(durations, 0.50),
        p95_seconds=percentile(durations, 0.95),
        sampled=len(finished),
    )


async def stuck(
    store: SagaStore, older_than: timedelta, *, limit: int = 100, now: datetime | None = None
) -> list[SagaRecord]:
    """Return in-progress sagas whose last write is older than ``older_than``, oldest first."""
    cutoff = (now or utcnow()) - older_than
    found = await store.list(SagaQuery(statuses=ACTIVE, updated_before=cutoff, limit=limit))
    return sorted(found, key=lambda r: r.updated_at)


@dataclass(slots=True)
class Health:
    """Whether the store answers, how fast, and how many sagas need a person."""

    ok: bool
    store: str
    latency_ms: float | None
    stuck: int = 0
    failed: int = 0
    pool: str | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    #: The connection pool as numbers: ``size``, ``checked_out``, ``overflow``.
    pool_stats: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for JSON."""
        return asdict(self)


async def health(store: SagaStore, *, stuck_after: timedelta = timedelta(hours=1)) -> Health:
    """Check that the store answers; count stuck and failed sagas."""
    started = time.perf_counter()
    try:
        counts = await store.count_by_status()
        latency = (time.perf_counter() - started) * 1000
        stuck_count = len(await stuck(store, stuck_after, limit=1000))
    except Exception as e:  # health reports every failure rather than raising it
        return Health(ok=False, store=store.location, latency_ms=None, error=str(e))
    numbers = store.pool_numbers()
    pool = (
        f"size {numbers['size']}, checked out {numbers['checked_out']}, "
        f"overflow {numbers['overflow']}"
        if numbers
        else None
    )
    return Health(
        ok=True,
        store=store.location,
        pool_stats=numbers,
        latency_ms=round(latency, 2),
        stuck=stuck_count,
        failed=counts.get(SagaStatus.FAILED, 0),
        pool=pool,
    )
