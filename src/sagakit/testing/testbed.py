"""``TestBed``: a Runtime on the memory store whose time and work the test drives.

A test bed runs no background worker and no relay. After each ``start``, ``send`` and
``advance`` it runs a worker until nothing is due (so the call returns with every saga
and instance moved as far as it can go at this virtual time), and it collects what the
sagas and machines published. Time is a :class:`~sagakit.clock.VirtualClock`: retry
back-off, saga deadlines, ``wait_for`` timeouts and state-machine schedules fire on
``await bed.advance(minutes=15)``, with no sleeping::

    async with TestBed(order, shipping) as bed:
        await bed.send("OrderSubmitted", {"order_id": "o-1", "total": 10})
        await bed.advance(minutes=16)            # the payment timeout fires
        assert await bed.state("order:o-1") == "Expired"
        assert bed.topics() == ["payments.requested", "orders.expired"]
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from ..clock import VirtualClock, forward, use_clock
from ..hooks import SagaHooks
from ..machines.definition import StateMachine
from ..orchestration.definition import Saga
from ..runtime import Runtime
from ..runtime_events import SendResult
from ..status import SagaStatus
from ..store.records import OutboxMessage, OutboxQuery, SagaEvent, SagaQuery, SagaRecord

_EVERY = 1_000_000
#: Statuses whose rows may hold a timer (not finished, not paused).
_TIMED = (
    SagaStatus.PENDING,
    SagaStatus.RUNNING,
    SagaStatus.COMPENSATING,
    SagaStatus.WAITING,
    SagaStatus.ACTIVE,
)


class TestBed:
    """Sagas and state machines on the memory store (or ``url``), under a virtual clock."""

    __test__ = False  # a helper for tests, not a test class pytest should collect

    def __init__(
        self,
        *definitions: Saga | StateMachine,
        url: str = "memory://",
        start: datetime | None = None,
        concurrency: int = 16,
        hooks: Iterable[SagaHooks] = (),
    ) -> None:
        #: The clock the bed's sagas read; move it with :meth:`advance`.
        self.clock = VirtualClock(start)
        #: The Runtime under test (``open`` with no background worker).
        self.runtime = Runtime(
            url, sagas=definitions, workers=concurrency, poll_interval=0.05, hooks=hooks
        )
        #: Every message written to publish so far, oldest first (the relay's input).
        self.published: list[OutboxMessage] = []
        self._clock_in_use: contextlib.ExitStack | None = None
        self._stop_listening: Callable[[], None] = lambda: None

    async def open(self) -> TestBed:
        """Install the virtual clock and open the Runtime."""
        stack = contextlib.ExitStack()
        stack.enter_context(use_clock(self.clock))
        try:
            await self.runtime.open(background=False)
        except BaseException:
            stack.close()
            raise
        self._clock_in_use = stack
        self._stop_listening = self.clock.listen(self.settle)
        return self

    async def close(self) -> None:
        """Close the Runtime and give the process its real clock back."""
        if self._clock_in_use is None:
            return
        self._stop_listening()
        try:
            await self.runtime.close()
        finally:
            self._clock_in_use.close()
            self._clock_in_use = None

    async def __aenter__(self) -> TestBed:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- driving ------------------------------------------------------------------------

    async def start(
        self, saga_type: str, context: Mapping[str, Any] | None = None, **options: Any
    ) -> SagaRecord:
        """Start a saga, run everything due, and return the saga as it stands then."""
        saga_id = await self.runtime.start(saga_type, context, **options)
        await self.settle()
        return await self.runtime.get(saga_id)

    async def send(
        self, event: str, data: Mapping[str, Any] | None = None, **options: Any
    ) -> SendResult:
        """Send an event (as ``Runtime.send``), then run everything it made due."""
        result = await self.runtime.send(event, data, **options)
        await self.settle()
        return result

    async def advance(self, delta: timedelta | float | None = None, **units: float) -> datetime:
        """Move the virtual time forward and run every timer due by then; return the time.

        ``delta`` in seconds or as a timedelta, or ``days=``, ``hours=``, ``minutes=``,
        ``seconds=``. The clock stops at each due time on the way, in order, so a timer
        that a fired timer sets (the next retry's back-off) fires too if it falls before
        the end.
        """
        target = self.clock.now() + forward(delta, **units)
        while (due := await self._next_due()) is not None and due <= target:
            await self.clock.advance(due - self.clock.now())
        return await self.clock.advance(target - self.clock.now())

    async def settle(self) -> None:
        """Run the worker until no saga or instance has anything due at this time."""
        await self.runtime.work(burst=True)
        rows = await self.runtime.store.list_outbox(OutboxQuery(limit=_EVERY))
        self.published = sorted(rows, key=lambda m: m.id or 0)

    async def _next_due(self) -> datetime | None:
        """The earliest timer after now in the store (retry, deadline, schedule, timeout)."""
        now = self.clock.now()
        query = SagaQuery(statuses=tuple(_TIMED), limit=_EVERY)
        times = []
        for rec in await self.runtime.store.list(query):
            times.append(rec.next_attempt_at)
            if rec.status is not SagaStatus.COMPENSATING:
                times.append(rec.timeout_at)
        later = [t for t in times if t is not None and t > now]
        return min(later, default=None)

    # -- reading ------------------------------------------------------------------------

    async def get(self, saga_id: str) -> SagaRecord:
        """A saga or instance as stored now."""
        return await self.runtime.get(saga_id)

    async def state(self, instance_id: str) -> str | None:
        """A state machine instance's current state (an orchestrated saga: its step)."""
        return (await self.runtime.get(instance_id)).current_step

    async def history(self, saga_id: str) -> list[SagaEvent]:
        """A saga's or instance's history, oldest first."""
        return await self.runtime.history(saga_id)

    def topics(self, saga_id: str | None = None) -> list[str]:
        """The topics published so far (by one saga, if given), in the order written."""
        return [m.topic for m in self.published if saga_id is None or m.saga_id == saga_id]
