"""A message as brokers carry it: what the relay sends and what consumers receive."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..store.records import OutboxMessage, new_message_id, utcnow

#: Header names sagakit sets on every message it publishes (besides the user's headers).
SAGA_ID_HEADER = "sagakit-saga-id"
SAGA_TYPE_HEADER = "sagakit-saga-type"
STEP_HEADER = "sagakit-step"


@dataclass(slots=True)
class Envelope:
    """One message: a topic (the routing key), a JSON payload and its identity.

    ``message_id`` is the same each time one outbox message is published again, so a
    consumer that remembers it (an inbox) applies the message once.
    """

    topic: str
    payload: dict[str, Any]
    message_id: str = field(default_factory=new_message_id)
    #: The saga that wrote the message (the AMQP ``correlation_id``).
    correlation_id: str | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    timestamp: datetime = field(default_factory=utcnow)
    #: How many times the broker delivered this message to the consumer (1 the first time).
    deliveries: int = 1

    @classmethod
    def of(cls, message: OutboxMessage) -> Envelope:
        """The envelope the relay publishes for an outbox row."""
        headers: dict[str, Any] = dict(message.headers or {})
        headers[SAGA_ID_HEADER] = message.saga_id
        if message.saga_type:
            headers[SAGA_TYPE_HEADER] = message.saga_type
        if message.step:
            headers[STEP_HEADER] = message.step
        return cls(
            topic=message.topic,
            payload=message.payload,
            message_id=message.message_id,
            correlation_id=message.saga_id,
            headers=headers,
            timestamp=message.created_at,
        )

    def body(self) -> bytes:
        """The payload as UTF-8 JSON bytes."""
        return json.dumps(self.payload, separators=(",", ":"), ensure_ascii=False).encode()

    @staticmethod
    def decode(body: bytes, topic: str) -> dict[str, Any]:
        """Read a JSON object body; ``ValueError`` names the topic when it is not one."""
        try:
            value = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"message on {topic!r} is not JSON: {e}") from None
        if not isinstance(value, Mapping):
            raise ValueError(f"message on {topic!r} is a {type(value).__name__}, not an object")
        return dict(value)
