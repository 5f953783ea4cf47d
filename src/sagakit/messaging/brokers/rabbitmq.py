"""RabbitMQ through aio-pika: a topic exchange, publisher confirms, mandatory routing.

Consumers get a durable quorum queue per name, bound to their topics, with a delivery
limit and a dead-letter queue (``<queue>.dead``) so that a poison message cannot block
the queue: RabbitMQ counts the deliveries, even across consumer crashes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Sequence
from typing import Any

from ...errors import ConfigurationError
from ...store.urls import redact
from ..broker import BrokerUnavailable, Handler, PublishRefused
from ..envelope import Envelope
from .consumers import NetworkBroker

log = logging.getLogger("sagakit.messaging")

#: Waits between attempts to re-open a consumer's connection, seconds (the last repeats).
_RECONNECT = (0.2, 0.5, 1.0, 2.0, 5.0)


class RabbitMQ(NetworkBroker):
    """Publishes to the topic exchange ``exchange`` (default ``sagakit``) with confirms."""

    def __init__(
        self,
        url: str = "amqp://guest:guest@127.0.0.1:5672/",
        *,
        exchange: str = "sagakit",
        confirm_timeout: float = 10.0,
        prefetch: int = 32,
    ) -> None:
        try:
            import aio_pika  # noqa: F401 - fail here, with the fix, not on first publish
        except ImportError:
            raise ConfigurationError(
                "the RabbitMQ broker needs aio-pika: pip install 'sagakit[rabbitmq]'"
            ) from None
        self.url = url
        self.exchange_name = exchange
        self.confirm_timeout = confirm_timeout
        self.prefetch = prefetch
        self.description = redact(url)
        self._connection: Any = None
        self._channel: Any = None
        self._lock = asyncio.Lock()
        super().__init__()

    async def connect(self) -> None:
        await self._publishing_channel()

    async def _open(self) -> tuple[Any, Any, Any]:
        """A new connection, a channel with confirms, and the exchange declared on it."""
        import aio_pika

        try:
            connection = await aio_pika.connect(self.url, timeout=self.confirm_timeout)
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            exchange = await channel.declare_exchange(
                self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
            )
        except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as e:
            raise self._lost(e) from e
        return connection, channel, exchange

    async def _publishing_channel(self) -> Any:
        """The publishing connection's channel as aiormq has it (opened on first use)."""
        connection, channel = self._connection, self._channel
        if connection is not None and channel is not None and not connection.is_closed:
            return channel  # the common case: no lock, which a batch's publishes would queue on
        async with self._lock:
            if self._connection is None or self._connection.is_closed:
                self._connection, opened, _ = await self._open()
                self._channel = await opened.get_underlay_channel()
            return self._channel

    async def _drop_connection(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()

    async def publish_many(self, envelopes: Sequence[Envelope]) -> list[BaseException | None]:
        # one deadline for the batch: a timer per message cost more than its encoding
        try:
            channel = await self._publishing_channel()
            async with asyncio.timeout(self.confirm_timeout):
                outcomes = await asyncio.gather(
                    *(self._send(channel, e) for e in envelopes), return_exceptions=True
                )
        except (BrokerUnavailable, TimeoutError) as e:
            error = e if isinstance(e, BrokerUnavailable) else self._lost(e)
            await self._drop_connection()
            return [error] * len(envelopes)
        if any(isinstance(outcome, BrokerUnavailable) for outcome in outcomes):
            await self._drop_connection()
        return list(outcomes)

    async def _send(self, channel: Any, envelope: Envelope) -> None:
        """Publish one message and wait for its confirm; errors as the port names them.

        Straight to aiormq's channel, under aio-pika: building an ``aio_pika.Message``
        (a guarded attribute write per field) and its properties again was a fifth of
        the relay's time, and waiting for the frame to reach the socket as well as for
        the confirm bought nothing.
        """
        import aio_pika
        from aiormq import spec

        properties = spec.Basic.Properties(
            message_id=envelope.message_id,
            correlation_id=envelope.correlation_id,
            message_type=envelope.topic,
            timestamp=envelope.timestamp,
            headers=envelope.headers,
            content_type="application/json",
            content_encoding="utf-8",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT.value,
        )
        try:
            await channel.basic_publish(
                envelope.body(),
                exchange=self.exchange_name,
                routing_key=envelope.topic,
                properties=properties,
                mandatory=True,
                wait=False,
            )
        except aio_pika.exceptions.PublishError as e:  # returned: no queue bound to the topic
            raise PublishRefused(f"{self.description} returned it: {e.reason or e}") from e
        except aio_pika.exceptions.DeliveryError as e:  # nacked by the broker
            raise PublishRefused(f"{self.description} refused it: {e!r}") from e
        except (OSError, aio_pika.exceptions.AMQPError, RuntimeError) as e:
            raise self._lost(e) from e

    async def _consume_forever(
        self,
        queue: str,
        topics: tuple[str, ...],
        handler: Handler,
        max_deliveries: int,
        ready: asyncio.Event,
    ) -> None:
        failures = 0
        while True:
            connection = None
            try:
                connection, channel, exchange = await self._open()
                await channel.set_qos(prefetch_count=self.prefetch)
                bound = await self._declare(channel, exchange, queue, topics, max_deliveries)
                closed = asyncio.Event()

                async def on_close(*_: Any, done: asyncio.Event = closed) -> None:
                    done.set()

                connection.close_callbacks.add(on_close)
                await bound.consume(functools.partial(self._on_message, handler=handler))
                ready.set()
                failures = 0
                await closed.wait()
                log.warning(
                    "consumer %s: connection to %s lost; reconnecting", queue, self.description
                )
            except BrokerUnavailable as e:
                if not ready.is_set() and failures == 0:
                    log.warning("consumer %s: %s; retrying", queue, e)
            finally:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close()
            await asyncio.sleep(_RECONNECT[min(failures, len(_RECONNECT) - 1)])
            failures += 1

    async def _declare(
        self, channel: Any, exchange: Any, queue: str, topics: tuple[str, ...], limit: int
    ) -> Any:
        import aio_pika

        dead_exchange = await channel.declare_exchange(
            f"{self.exchange_name}.dead", aio_pika.ExchangeType.DIRECT, durable=True
        )
        dead = await channel.declare_queue(
            f"{queue}.dead", durable=True, arguments={"x-queue-type": "quorum"}
        )
        await dead.bind(dead_exchange, routing_key=queue)
        bound = await channel.declare_queue(
            queue,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": max(limit - 1, 0),
                "x-dead-letter-exchange": dead_exchange.name,
                "x-dead-letter-routing-key": queue,
            },
        )
        for topic in topics:
            await bound.bind(exchange, routing_key=topic)
        return bound

    async def _on_message(self, message: Any, handler: Handler) -> None:
        headers = dict(message.headers or {})
        # quorum queues count earlier deliveries in x-delivery-count
        deliveries = int(headers.pop("x-delivery-count", 0) or 0) + 1
        topic = message.type or message.routing_key or ""
        try:
            envelope = Envelope(
                topic=topic,
                payload=Envelope.decode(message.body, topic),
                message_id=message.message_id or f"amqp-{message.delivery_tag}",
                correlation_id=message.correlation_id,
                headers=headers,
                deliveries=deliveries,
            )
            if message.timestamp is not None:
                envelope.timestamp = message.timestamp
        except ValueError as e:  # a body no handler can read: straight to the dead letters
            log.warning("message %s rejected: %s", message.message_id, e)
            await message.reject(requeue=False)
            return
        try:
            await handler(envelope)
        except Exception as e:  # not applied: RabbitMQ delivers it again, up to the limit
            log.warning("message %s (delivery %d) failed: %s", envelope.message_id, deliveries, e)
            await message.nack(requeue=True)
            return
        await message.ack()

    async def close(self) -> None:
        await self._consumers.stop_all()
        await self._drop_connection()
