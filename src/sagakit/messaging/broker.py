"""The broker port: publish with confirmation, consume with acknowledgement.

A second broker is one module under ``brokers/`` implementing ``Broker``.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence

from ..errors import SagaError
from .envelope import Envelope

#: What a consumer does with one message; raising means "not applied, deliver it again".
Handler = Callable[[Envelope], Awaitable[None]]


class BrokerUnavailable(SagaError):
    """The broker cannot be reached now; nothing was confirmed, try again later."""


class PublishRefused(SagaError):
    """The broker refused this message (unroutable, rejected): retrying it may not help."""


class Broker(ABC):
    """Where the relay publishes outbox messages and consumers receive them."""

    #: Shown in logs and errors, without a password.
    description: str = "broker"

    async def connect(self) -> None:  # noqa: B027 - brokers without a connection
        """Connect now (publishing connects on first use, too); ``BrokerUnavailable``."""

    async def close(self) -> None:  # noqa: B027 - brokers without a connection
        """Stop consuming and disconnect."""

    @abstractmethod
    async def publish(self, envelope: Envelope) -> None:
        """Publish ``envelope`` with its topic as routing key; return once it is confirmed.

        Raise ``PublishRefused`` when the broker refuses this message (e.g. no queue is
        bound to its topic) and ``BrokerUnavailable`` when it cannot be reached.
        """

    async def publish_many(self, envelopes: Sequence[Envelope]) -> list[BaseException | None]:
        """Publish a batch at once; per envelope, ``None`` once confirmed, or its error.

        The relay's batch holds one message per saga, so their order among themselves is
        free. A broker may override this to share one deadline and one connection lookup.
        """
        outcomes = await asyncio.gather(
            *(self.publish(envelope) for envelope in envelopes), return_exceptions=True
        )
        return list(outcomes)

    @abstractmethod
    async def consume(
        self, queue: str, topics: Sequence[str], handler: Handler, *, max_deliveries: int = 5
    ) -> Callable[[], Awaitable[None]]:
        """Deliver messages of ``topics`` (patterns: ``*`` one word, ``#`` any) to ``handler``.

        ``queue`` is durable and shared by every consumer of that name. A message is
        acknowledged after ``handler`` returns; when it raises, the message is delivered
        again, and after ``max_deliveries`` it goes to the dead-letter queue
        ``<queue>.dead``. Return a coroutine function that stops consuming.
        """

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"
