"""Small statistics helpers: percentiles, rates, latency summaries."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile (0-100) of ``values`` by linear interpolation."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_ms(seconds: Sequence[float]) -> dict[str, float]:
    """Summarise latencies given in seconds as p50/p99/max in milliseconds."""
    return {
        "p50": round(percentile(seconds, 50) * 1000, 3),
        "p99": round(percentile(seconds, 99) * 1000, 3),
        "max": round(max(seconds) * 1000, 3) if seconds else math.nan,
        "count": len(seconds),
    }


def rate(count: float, seconds: float) -> float:
    """Return ``count / seconds``, rounded for reports."""
    return round(count / seconds, 2) if seconds > 0 else math.nan


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """Return ``numerator / denominator`` rounded to 3 places, or None if either is missing."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    if math.isnan(numerator) or math.isnan(denominator):
        return None
    return round(numerator / denominator, 3)
