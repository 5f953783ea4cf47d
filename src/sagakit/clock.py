"""The one clock sagakit reads: the system's, or a virtual one a test moves by hand.

Every "what time is it" in sagakit (retry timers, saga deadlines, leases, ``wait_for``
timeouts, state-machine schedules, retention cut-offs) goes through :func:`utcnow`, and
every timer is kept in the store as a due time that a worker's claim compares with it.
So a :class:`VirtualClock` installed with :func:`use_clock` makes all of them fire on
``await clock.advance(minutes=15)``, with no sleeping, and production code runs unchanged
on the system clock.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Where the time comes from."""

    #: Whether time moves only when a test says so (then no timer may wait in memory).
    virtual: bool

    def now(self) -> datetime:
        """The current time, an aware UTC datetime."""
        ...


class SystemClock:
    """The real time."""

    virtual = False

    def now(self) -> datetime:
        """The system's current time in UTC."""
        return datetime.now(UTC)


class VirtualClock:
    """A clock that stands still until :meth:`advance` moves it.

    Install it with ``with use_clock(clock):`` around the code under test. Each advance
    wakes whoever listens (a Runtime's worker looks for due work at once), so timers due
    by then run without waiting for a poll.
    """

    virtual = True

    def __init__(self, start: datetime | None = None) -> None:
        if start is not None and start.tzinfo is None:
            raise ValueError(
                "VirtualClock start must be timezone-aware, e.g. datetime(..., tzinfo=UTC)"
            )
        self._now = (start or datetime.now(UTC)).astimezone(UTC)
        self._listeners: list[Callable[[], object]] = []

    def now(self) -> datetime:
        """The virtual time: where the last advance left it."""
        return self._now

    async def advance(self, delta: timedelta | float | None = None, **units: float) -> datetime:
        """Move the time forward: ``delta`` seconds or a timedelta, or ``minutes=15`` etc.

        Returns the new time. Listeners are called after the move; an awaitable they return
        is awaited, so a test bed's worker has run everything due when this returns.
        """
        self._now += forward(delta, **units)
        for listener in list(self._listeners):
            result = listener()
            if inspect.isawaitable(result):
                await result
        return self._now

    def listen(self, callback: Callable[[], object]) -> Callable[[], None]:
        """Call ``callback`` after every advance; returns the function that stops it."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None


def forward(
    delta: timedelta | float | None = None,
    *,
    days: float = 0,
    hours: float = 0,
    minutes: float = 0,
    seconds: float = 0,
) -> timedelta:
    """The step of an ``advance(...)`` call as a timedelta; refuses to go back."""
    step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta or 0)
    step += timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if step < timedelta(0):
        raise ValueError(f"a clock only moves forward; advance got {step}")
    return step


_SYSTEM = SystemClock()
_current: Clock = _SYSTEM


def current() -> Clock:
    """The clock in use."""
    return _current


def utcnow() -> datetime:
    """The current time by the clock in use, an aware UTC datetime."""
    return _current.now()


@contextlib.contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Make ``clock`` the one sagakit reads inside the ``with`` block (this process)."""
    global _current
    before, _current = _current, clock
    try:
        yield clock
    finally:
        _current = before


def on_advance(callback: Callable[[], object]) -> Callable[[], None]:
    """Call ``callback`` whenever a virtual clock in use advances; a no-op on real time."""
    if isinstance(_current, VirtualClock):
        return _current.listen(callback)
    return lambda: None
