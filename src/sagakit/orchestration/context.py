"""The read-only view of a saga's context that each step and compensation receives."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ..store.records import OutboxMessage
from .invoke import ensure_json


class StepContext(Mapping[str, Any]):
    """A read-only mapping over the saga's context, plus who and where the step is.

    ``idempotency_key`` is stable for a saga and step across retries and restarts: pass
    it to the services a step calls so that re-running the step has no second effect.
    """

    __slots__ = ("_data", "_outbox", "attempt", "idempotency_key", "saga_id", "saga_type", "step")

    def __init__(
        self, data: Mapping[str, Any], *, saga_id: str, saga_type: str, step: str, attempt: int
    ) -> None:
        self._data = data
        self._outbox: list[OutboxMessage] = []
        self.saga_id = saga_id
        self.saga_type = saga_type
        self.step = step
        self.attempt = attempt
        self.idempotency_key = f"{saga_id}:{step}"

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def publish(
        self, topic: str, payload: Mapping[str, Any], headers: Mapping[str, Any] | None = None
    ) -> None:
        """Queue a message; it is written to the outbox in the step's checkpoint transaction.

        If the step fails, its messages are dropped with it.
        """
        if not isinstance(topic, str) or not topic:
            raise ValueError(f"publish: topic must be a non-empty string, got {topic!r}")
        ensure_json(dict(payload), f"step {self.step!r} publish({topic!r}) payload")
        ensure_json(dict(headers or {}), f"step {self.step!r} publish({topic!r}) headers")
        self._outbox.append(
            OutboxMessage(
                saga_id=self.saga_id,
                topic=topic,
                payload=dict(payload),
                headers=dict(headers or {}),
                saga_type=self.saga_type,
                step=self.step,
            )
        )

    @property
    def messages(self) -> list[OutboxMessage]:
        """The messages this step published so far."""
        return self._outbox

    def __repr__(self) -> str:
        return f"StepContext(saga_id={self.saga_id!r}, step={self.step!r}, data={self._data!r})"
