"""What network brokers share: consumers as tasks that reconnect, publish as a batch of one."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from ..broker import Broker, BrokerUnavailable, Handler
from ..envelope import Envelope


class ConsumerTasks:
    """The consuming tasks of one broker: started ready-or-failed, stopped all at once."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    async def start(
        self, queue: str, run: Callable[[asyncio.Event], Coroutine[Any, Any, None]]
    ) -> Callable[[], Awaitable[None]]:
        """Run ``run(ready)`` as a task; return once it set ``ready`` (or failed).

        Waiting for the first subscription means a caller's publish right after this
        returns reaches the queue. Returns a coroutine function that stops the task.
        """
        ready = asyncio.Event()
        task = asyncio.create_task(run(ready), name=f"sagakit-consume-{queue}")
        self._tasks.append(task)
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task.done():
            task.result()

        async def stop() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        return stop

    async def stop_all(self) -> None:
        """Cancel every consuming task and wait for each to end."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()


class NetworkBroker(Broker):
    """A broker over the network: its consumers reconnect in tasks of their own."""

    def __init__(self) -> None:
        self._consumers = ConsumerTasks()

    async def publish(self, envelope: Envelope) -> None:
        (error,) = await self.publish_many([envelope])
        if error is not None:
            raise error

    def _lost(self, error: BaseException) -> BrokerUnavailable:
        return BrokerUnavailable(f"{self.description} is unavailable: {error!r}")

    async def consume(
        self, queue: str, topics: Sequence[str], handler: Handler, *, max_deliveries: int = 5
    ) -> Callable[[], Awaitable[None]]:
        return await self._consumers.start(
            queue,
            functools.partial(self._consume_forever, queue, tuple(topics), handler, max_deliveries),
        )

    @abstractmethod
    async def _consume_forever(
        self,
        queue: str,
        topics: tuple[str, ...],
        handler: Handler,
        max_deliveries: int,
        ready: asyncio.Event,
    ) -> None:
        """Subscribe, set ``ready``, deliver to ``handler``; reconnect after a loss, forever."""
