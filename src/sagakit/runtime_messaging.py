"""What a Runtime consumes from its broker: handlers with an inbox, and events for ``send``.

The ``Runtime`` (``runtime.py``) opens the broker; these methods subscribe to it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from .errors import ConfigurationError
from .messaging.broker import Broker, Handler
from .messaging.consumer import Consumer, Subscription, subscription
from .messaging.envelope import Envelope
from .runtime_events import EventSending

log = logging.getLogger("sagakit.runtime")


class MessageRouting(EventSending):
    """``consume`` and ``route_events``: broker messages to handlers and to state machines."""

    broker: Broker | None
    _opened: bool
    _subscriptions: list[Subscription]
    _unsubscribe: list[Callable[[], Awaitable[None]]]

    async def consume(
        self,
        topics: str | Sequence[str],
        handler: Handler,
        *,
        queue: str | None = None,
        max_deliveries: int = 5,
    ) -> None:
        """Call ``handler(envelope)`` for each message of ``topics``, once per message id.

        Messages come from the durable queue ``queue`` (default: the handler's module and
        name), bound to ``topics`` (``*`` one word, ``#`` any). A handler that raises gets
        the message again, up to ``max_deliveries``, then it goes to ``<queue>.dead``.
        """
        sub = subscription(topics, handler, queue=queue, max_deliveries=max_deliveries)
        if self.broker is None:
            raise ConfigurationError("consume() needs a broker: Runtime(..., broker=URL)")
        self._subscriptions.append(sub)
        if self._opened:
            await self._subscribe(sub)

    async def route_events(
        self,
        topics: str | Sequence[str] | None = None,
        *,
        queue: str,
        event: Callable[[Envelope], str] | None = None,
        max_deliveries: int = 5,
    ) -> None:
        """Deliver broker messages of ``topics`` as events: ``rt.send`` for each.

        Without ``topics``, the queue is bound to every event the registered state
        machines and ``wait_for`` steps take, each topic named as its event. The event's
        name is ``event(envelope)`` (default: the message's topic), its data the payload
        and its message id the message's, so each instance applies a message once,
        marked in the transaction that applies it. A message no definition can take (or
        whose data lacks the key) is redelivered, then dead-lettered.
        """
        if topics is None:
            topics = self.known_events()
            if not topics:
                raise ConfigurationError(
                    "route_events(): no registered state machine or wait_for step takes an "
                    "event; pass topics=..., or register the definitions first"
                )
        name_of = event or (lambda envelope: envelope.topic)

        async def deliver(envelope: Envelope) -> None:
            result = await self.send(
                name_of(envelope), envelope.payload, message_id=envelope.message_id
            )
            if result.outcome.is_fault:  # recorded where it could be; never redelivered
                log.warning(
                    "message %s (%s) as event: %s",
                    envelope.message_id,
                    envelope.topic,
                    "; ".join(
                        f"{d.instance_id}: {d.error or d.outcome}" for d in result.deliveries
                    ),
                )

        sub = subscription(topics, deliver, queue=queue, max_deliveries=max_deliveries)
        sub.own_inbox = False
        if self.broker is None:
            raise ConfigurationError("route_events() needs a broker: Runtime(..., broker=URL)")
        self._subscriptions.append(sub)
        if self._opened:
            await self._subscribe(sub)

    async def _subscribe(self, sub: Subscription) -> None:
        assert self.broker is not None
        handler = (
            Consumer(self.store, sub.queue, sub.handler, self.hooks)
            if sub.own_inbox
            else sub.handler
        )
        self._unsubscribe.append(
            await self.broker.consume(
                sub.queue, sub.topics, handler, max_deliveries=sub.max_deliveries
            )
        )
