"""Lay a saga's history out on a time axis: one bar per step attempt and per compensation.

Events carry the time they were written (``at``) and how long the attempt ran
(``duration_ms``), so a bar spans ``at - duration`` to ``at``. Positions are
percentages of the saga's whole span, for the dashboard to draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..store.records import SagaEvent

#: Event types drawn as bars, and how: (kind, succeeded).
BAR_EVENTS: dict[str, tuple[str, bool]] = {
    "step_completed": ("step", True),
    "step_failed": ("step", False),
    "compensation_completed": ("compensation", True),
    "compensation_failed": ("compensation", False),
}

#: Narrowest bar drawn, in percent of the axis, so that a 1 ms attempt stays visible.
MIN_WIDTH = 0.6


@dataclass(frozen=True, slots=True)
class Bar:
    """One step attempt or compensation attempt."""

    kind: str  #: "step" or "compensation"
    ok: bool
    step: str
    attempt: int | None
    start: datetime
    duration_ms: float
    left: float  #: percent of the axis
    width: float  #: percent of the axis
    error: dict[str, Any] | None

    @property
    def css(self) -> str:
        """The CSS class that colours the bar: step-ok, step-failed, compensation-ok, ..."""
        return f"{self.kind}-{'ok' if self.ok else 'failed'}"


@dataclass(frozen=True, slots=True)
class Marker:
    """A moment on the axis: the saga starting or ending, or an operator acting."""

    label: str
    at: datetime
    left: float


@dataclass(frozen=True, slots=True)
class Timeline:
    """Bars and markers on one axis from ``start`` lasting ``span_ms``."""

    bars: list[Bar]
    markers: list[Marker]
    start: datetime | None
    span_ms: float
    ticks: list[tuple[float, str]]


def _label_ms(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 120_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms / 60_000:.1f} min"


def _marker_label(event: SagaEvent) -> str:
    label = event.type.replace("_", " ")
    return f"{label} by {event.actor}" if event.actor else label


def build_timeline(events: list[SagaEvent], *, ticks: int = 5) -> Timeline:
    """Return the timeline of ``events`` (a saga's history, in order)."""
    spans: list[tuple[SagaEvent, datetime]] = []
    for event in events:
        if event.type in BAR_EVENTS:
            duration = timedelta(milliseconds=event.duration_ms or 0.0)
            spans.append((event, event.at - duration))
    moments = [e for e in events if e.type.startswith(("saga_", "operator_"))]
    times = [start for _, start in spans] + [e.at for e in events]
    if not times:
        return Timeline([], [], None, 0.0, [])
    origin, end = min(times), max(times)
    span_ms = max((end - origin).total_seconds() * 1000, 1.0)

    def percent(at: datetime) -> float:
        return round((at - origin).total_seconds() * 1000 / span_ms * 100, 3)

    bars = []
    for event, start in spans:
        kind, ok = BAR_EVENTS[event.type]
        left = min(percent(start), 100 - MIN_WIDTH)
        width = max(percent(event.at) - percent(start), MIN_WIDTH)
        bars.append(
            Bar(
                kind=kind,
                ok=ok,
                step=event.step or "?",
                attempt=event.attempt,
                start=start,
                duration_ms=event.duration_ms or 0.0,
                left=left,
                width=min(width, 100 - left),
                error=event.error,
            )
        )
    markers = [Marker(_marker_label(e), e.at, percent(e.at)) for e in moments]
    axis = [(100 * i / ticks, _label_ms(span_ms * i / ticks)) for i in range(ticks + 1)]
    return Timeline(bars, markers, origin, span_ms, axis)
