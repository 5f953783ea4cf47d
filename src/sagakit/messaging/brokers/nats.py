"""NATS JetStream through nats-py: one stream, acknowledged publishes, durable consumers.

Every topic is a subject under ``<stream>.`` (``order.paid`` is ``sagakit.order.paid``),
stored in one stream that captures them all, so a message no consumer listens to yet is
kept, not dropped. A publish returns once JetStream acknowledges it; ``Nats-Msg-Id`` is
the outbox ``message_id``, so the server itself drops a re-publish inside its duplicate
window. A queue is a durable pull consumer of that name; after ``max_deliveries``
failed deliveries a message is copied to ``<stream>-dead`` (subject
``<stream>-dead.<queue>``) and terminated, so a poison message cannot block the queue.
NATS headers are text: header values that are not strings arrive as their JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ...errors import ConfigurationError
from ...store.urls import redact
from ..broker import BrokerUnavailable, Handler, PublishRefused
from ..envelope import Envelope
from .consumers import NetworkBroker
from .memory import topic_pattern

log = logging.getLogger("sagakit.messaging")

#: Waits between attempts to re-open a consumer, seconds (the last repeats).
_RECONNECT = (0.2, 0.5, 1.0, 2.0, 5.0)
_TOPIC_HEADER = "sagakit-topic"
_CORRELATION_HEADER = "sagakit-correlation-id"
_TIMESTAMP_HEADER = "sagakit-timestamp"
#: Headers sagakit reads back into the envelope's fields, not into its ``headers``.
_OWN = {"Nats-Msg-Id", _TOPIC_HEADER, _CORRELATION_HEADER, _TIMESTAMP_HEADER, "content-type"}


def subject_filter(prefix: str, binding: str) -> str | None:
    """The NATS subject for an AMQP-style binding, or None if NATS cannot say it.

    ``*`` is one token in both; ``#`` (any number of words) is NATS's ``>`` only at the
    end, where ``>`` also needs at least one token.
    """
    words = binding.split(".")
    if "#" in words[:-1]:
        return None
    if words[-1] == "#":
        return None if len(words) == 1 else f"{prefix}.{'.'.join(words[:-1])}.>"
    return f"{prefix}.{binding}"


class NatsJetStream(NetworkBroker):
    """Publishes to the JetStream stream ``stream`` (default ``sagakit``) with acks."""

    def __init__(
        self,
        url: str = "nats://127.0.0.1:4222",
        *,
        stream: str = "sagakit",
        ack_timeout: float = 10.0,
        prefetch: int = 32,
        ack_wait: float = 30.0,
    ) -> None:
        try:
            import nats  # noqa: F401 - fail here, with the fix, not on first publish
        except ImportError:
            raise ConfigurationError(
                "the NATS broker needs nats-py: pip install 'sagakit[nats]'"
            ) from None
        if not re.fullmatch(r"[A-Za-z0-9_-]+", stream):
            raise ConfigurationError(
                f"NATS stream name {stream!r} may hold only letters, digits, '_' and '-'"
            )
        self.url = url
        self.stream = stream
        self.ack_timeout = ack_timeout
        self.prefetch = prefetch
        self.ack_wait = ack_wait
        self.description = redact(url)
        self._nc: Any = None
        self._js: Any = None
        self._lock = asyncio.Lock()
        super().__init__()

    async def connect(self) -> None:
        await self._jetstream()

    async def _jetstream(self) -> Any:
        nc, js = self._nc, self._js
        if nc is not None and js is not None and nc.is_connected:
            return js
        async with self._lock:
            if self._nc is None or self._nc.is_closed:
                self._nc, self._js = await self._open()
            return self._js

    async def _open(self) -> tuple[Any, Any]:
        """A connection, its JetStream context, and both streams declared."""
        import nats
        from nats.js.api import StreamConfig

        try:
            nc = await nats.connect(
                self.url, connect_timeout=self.ack_timeout, max_reconnect_attempts=-1
            )
            js = nc.jetstream(timeout=self.ack_timeout)
            for name in (self.stream, f"{self.stream}-dead"):
                config = StreamConfig(name=name, subjects=[f"{name}.>"])
                try:
                    await js.add_stream(config)
                except nats.js.errors.BadRequestError:  # it exists, maybe configured by hand
                    await js.stream_info(name)
        except (TimeoutError, OSError, nats.errors.Error) as e:
            raise self._lost(e) from e
        return nc, js

    async def publish_many(self, envelopes: Sequence[Envelope]) -> list[BaseException | None]:
        try:
            js = await self._jetstream()
        except BrokerUnavailable as e:
            return [e] * len(envelopes)
        outcomes = await asyncio.gather(
            *(self._send(js, e) for e in envelopes), return_exceptions=True
        )
        return list(outcomes)

    async def _send(self, js: Any, envelope: Envelope) -> None:
        """Publish one message and wait for JetStream's ack; errors as the port names them."""
        import nats

        headers = {str(k): _text(v) for k, v in envelope.headers.items()}
        headers.update(
            {
                "Nats-Msg-Id": envelope.message_id,
                _TOPIC_HEADER: envelope.topic,
                _TIMESTAMP_HEADER: envelope.timestamp.isoformat(),
                "content-type": "application/json",
            }
        )
        if envelope.correlation_id is not None:
            headers[_CORRELATION_HEADER] = envelope.correlation_id
        subject = f"{self.stream}.{envelope.topic}"
        try:
            await js.publish(subject, envelope.body(), headers=headers, timeout=self.ack_timeout)
        except nats.errors.NoRespondersError as e:  # no stream takes the subject
            raise PublishRefused(f"{self.description}: no stream takes {subject!r}") from e
        except nats.js.errors.APIError as e:  # refused by JetStream (full, too large...)
            raise PublishRefused(f"{self.description} refused it: {e}") from e
        except (TimeoutError, OSError, nats.errors.Error) as e:
            raise self._lost(e) from e

    async def _consume_forever(
        self,
        queue: str,
        topics: tuple[str, ...],
        handler: Handler,
        max_deliveries: int,
        ready: asyncio.Event,
    ) -> None:
        import nats

        failures = 0
        while True:
            try:
                js = await self._jetstream()
                subscription = await self._subscribe(js, queue, topics, max_deliveries)
                ready.set()
                failures = 0
                await self._pull(js, subscription, queue, topics, handler, max_deliveries)
            except (BrokerUnavailable, nats.errors.Error, OSError) as e:
                if not ready.is_set() and failures == 0:
                    log.warning("consumer %s: %s; retrying", queue, e)
            await asyncio.sleep(_RECONNECT[min(failures, len(_RECONNECT) - 1)])
            failures += 1

    async def _subscribe(
        self, js: Any, queue: str, topics: tuple[str, ...], max_deliveries: int
    ) -> Any:
        from nats.js.api import AckPolicy, ConsumerConfig

        subjects = {subject_filter(self.stream, t) for t in topics}
        # one subject the consumer can filter by; several (before NATS 2.10) or one NATS
        # cannot express: the whole stream, the others acknowledged here unread
        only = next(iter(subjects)) if len(subjects) == 1 else None
        config = ConsumerConfig(
            durable_name=_durable(queue),
            ack_policy=AckPolicy.EXPLICIT,
            max_deliver=max_deliveries,
            ack_wait=self.ack_wait,
        )
        return await js.pull_subscribe(
            only or f"{self.stream}.>", durable=_durable(queue), stream=self.stream, config=config
        )

    async def _pull(
        self,
        js: Any,
        subscription: Any,
        queue: str,
        topics: tuple[str, ...],
        handler: Handler,
        max_deliveries: int,
    ) -> None:
        import nats

        patterns = [topic_pattern(t) for t in topics]
        while True:
            try:
                messages = await subscription.fetch(self.prefetch, timeout=1.0)
            except nats.errors.TimeoutError:
                continue
            for message in messages:
                topic = message.subject.removeprefix(f"{self.stream}.")
                if not any(p.match(topic) for p in patterns):
                    await message.ack()  # the stream holds more than this queue reads
                    continue
                await self._on_message(js, message, queue, topic, handler, max_deliveries)

    async def _on_message(
        self, js: Any, message: Any, queue: str, topic: str, handler: Handler, limit: int
    ) -> None:
        headers = dict(message.headers or {})
        deliveries = int(message.metadata.num_delivered)
        try:
            envelope = Envelope(
                topic=headers.pop(_TOPIC_HEADER, topic),
                payload=Envelope.decode(message.data, topic),
                message_id=headers.pop("Nats-Msg-Id", None) or f"nats-{message.reply}",
                correlation_id=headers.pop(_CORRELATION_HEADER, None),
                headers={k: v for k, v in headers.items() if k not in _OWN},
                deliveries=deliveries,
            )
            stamp = headers.get(_TIMESTAMP_HEADER)
            if stamp:
                envelope.timestamp = datetime.fromisoformat(stamp)
        except ValueError as e:  # a body no handler can read: straight to the dead letters
            log.warning("message %s rejected: %s", message.subject, e)
            await self._dead_letter(js, message, queue)
            return
        try:
            await handler(envelope)
        except Exception as e:  # not applied: JetStream delivers it again, up to the limit
            log.warning("message %s (delivery %d) failed: %s", envelope.message_id, deliveries, e)
            if deliveries >= limit:
                await self._dead_letter(js, message, queue)
            else:
                await message.nak()
            return
        await message.ack()

    async def _dead_letter(self, js: Any, message: Any, queue: str) -> None:
        """Keep the message in the dead-letter stream, then end its deliveries."""
        subject = f"{self.stream}-dead.{_durable(queue)}"
        await js.publish(subject, message.data, headers=dict(message.headers or {}))
        await message.term()

    async def close(self) -> None:
        await self._consumers.stop_all()
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.close()


def _durable(queue: str) -> str:
    """A queue name as a JetStream durable name (no dots, spaces or wildcards)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", queue)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
