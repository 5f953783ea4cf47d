"""A broker inside one process: a topic exchange of asyncio queues, for tests and demos."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache

from ..broker import Broker, Handler, PublishRefused
from ..envelope import Envelope

log = logging.getLogger("sagakit.messaging")


@lru_cache(maxsize=256)
def topic_pattern(binding: str) -> re.Pattern[str]:
    """AMQP topic matching: words split by ``.``, ``*`` is one word, ``#`` zero or more."""
    parts = []
    for word in binding.split("."):
        if word == "#":
            parts.append(r"(?:[^.]+(?:\.[^.]+)*)?")
        elif word == "*":
            parts.append(r"[^.]+")
        else:
            parts.append(re.escape(word))
    # "a.#" also matches "a": let the dot before a "#" be optional
    pattern = r"\.".join(parts).replace(r"\.(?:[^.]+(?:\.[^.]+)*)?", r"(?:\.[^.]+)*")
    return re.compile(f"^{pattern}$")


@dataclass
class _Queue:
    topics: tuple[str, ...]
    messages: asyncio.Queue[Envelope] = field(default_factory=asyncio.Queue)
    dead: list[Envelope] = field(default_factory=list)

    def binds(self, topic: str) -> bool:
        return any(topic_pattern(t).match(topic) for t in self.topics)


class MemoryBroker(Broker):
    """Publishes to in-process queues; ``published`` keeps every confirmed message."""

    description = "memory://"

    def __init__(self) -> None:
        #: Every message confirmed, in publish order (the test's view of what left).
        self.published: list[Envelope] = []
        self._queues: dict[str, _Queue] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def publish(self, envelope: Envelope) -> None:
        routed = [q for q in self._queues.values() if q.binds(envelope.topic)]
        if self._queues and not routed:
            raise PublishRefused(f"no queue is bound to topic {envelope.topic!r}")
        self.published.append(envelope)
        for queue in routed:
            queue.messages.put_nowait(replace(envelope, deliveries=1))

    def dead_letters(self, queue: str) -> list[Envelope]:
        """Messages of ``queue`` that failed every delivery."""
        return list(self._queues[queue].dead) if queue in self._queues else []

    async def consume(
        self, queue: str, topics: Sequence[str], handler: Handler, *, max_deliveries: int = 5
    ) -> Callable[[], Awaitable[None]]:
        bound = self._queues.setdefault(queue, _Queue(tuple(topics)))
        bound.topics = tuple(dict.fromkeys((*bound.topics, *topics)))
        task = asyncio.create_task(self._deliver(bound, handler, max_deliveries))
        self._tasks.append(task)

        async def stop() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        return stop

    async def _deliver(self, queue: _Queue, handler: Handler, max_deliveries: int) -> None:
        while True:
            envelope = await queue.messages.get()
            try:
                await handler(envelope)
            except Exception as e:  # the handler's failure: deliver again, or dead-letter
                if envelope.deliveries >= max_deliveries:
                    log.warning(
                        "message %s dead after %d deliveries: %s",
                        envelope.message_id,
                        envelope.deliveries,
                        e,
                    )
                    queue.dead.append(envelope)
                else:
                    queue.messages.put_nowait(replace(envelope, deliveries=envelope.deliveries + 1))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
