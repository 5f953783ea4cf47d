"""Lifecycle hooks: how metrics, tracing and logs watch the engine and relay from outside."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from .store.records import OutboxMessage, SagaRecord

log = logging.getLogger("sagakit.hooks")


class SagaHooks:
    """Receives the engine's lifecycle; every method is a no-op to override as needed.

    Hooks run inline on the engine's task: keep them fast and never raise.
    """

    def saga_started(self, saga: SagaRecord) -> None:
        """A saga was accepted."""

    def step_completed(self, saga: SagaRecord, step: str, seconds: float) -> None:
        """A step completed and was checkpointed."""

    def step_failed(
        self, saga: SagaRecord, step: str, error: BaseException, *, will_retry: bool
    ) -> None:
        """A step attempt failed; ``will_retry`` tells whether another attempt follows."""

    def compensation_completed(self, saga: SagaRecord, step: str, seconds: float) -> None:
        """A step's compensation completed and was checkpointed."""

    def compensation_failed(
        self, saga: SagaRecord, step: str, error: BaseException, *, will_retry: bool
    ) -> None:
        """A compensation attempt failed."""

    def saga_finished(self, saga: SagaRecord, seconds: float | None) -> None:
        """A saga reached a terminal status (or was paused)."""

    def messages_published(self, messages: list[OutboxMessage]) -> None:
        """The broker confirmed these outbox messages (the relay marked them published)."""

    def message_failed(self, message: OutboxMessage, error: BaseException, *, dead: bool) -> None:
        """Publishing a message failed; ``dead``: it used its attempts and waits for a person."""

    def message_duplicate(self, consumer: str, message_id: str) -> None:
        """A consumer was given a message its inbox says it applied already."""

    def event_delivered(
        self, machine: str, event: str, state: str | None, outcome: str, conflicts: int
    ) -> None:
        """A state machine event had ``outcome`` (``applied``, ``unhandled``...) in ``state``.

        ``conflicts``: writes another process won first, each retried.
        """


class HookChain(SagaHooks):
    """Calls several hooks in order, so metrics, tracing and logging can all listen.

    A hook that raises is logged and skipped: observing a saga must never break it.
    """

    def __init__(self, hooks: Iterable[SagaHooks] = ()) -> None:
        self.hooks = list(hooks)

    def _each(self, method: str, *args: Any, **kwargs: Any) -> None:
        for hook in self.hooks:
            try:
                getattr(hook, method)(*args, **kwargs)
            except Exception:
                log.exception("hook %s.%s failed; ignored", type(hook).__name__, method)

    def saga_started(self, saga: SagaRecord) -> None:
        self._each("saga_started", saga)

    def step_completed(self, saga: SagaRecord, step: str, seconds: float) -> None:
        self._each("step_completed", saga, step, seconds)

    def step_failed(
        self, saga: SagaRecord, step: str, error: BaseException, *, will_retry: bool
    ) -> None:
        self._each("step_failed", saga, step, error, will_retry=will_retry)

    def compensation_completed(self, saga: SagaRecord, step: str, seconds: float) -> None:
        self._each("compensation_completed", saga, step, seconds)

    def compensation_failed(
        self, saga: SagaRecord, step: str, error: BaseException, *, will_retry: bool
    ) -> None:
        self._each("compensation_failed", saga, step, error, will_retry=will_retry)

    def saga_finished(self, saga: SagaRecord, seconds: float | None) -> None:
        self._each("saga_finished", saga, seconds)

    def messages_published(self, messages: list[OutboxMessage]) -> None:
        self._each("messages_published", messages)

    def message_failed(self, message: OutboxMessage, error: BaseException, *, dead: bool) -> None:
        self._each("message_failed", message, error, dead=dead)

    def message_duplicate(self, consumer: str, message_id: str) -> None:
        self._each("message_duplicate", consumer, message_id)

    def event_delivered(
        self, machine: str, event: str, state: str | None, outcome: str, conflicts: int
    ) -> None:
        self._each("event_delivered", machine, event, state, outcome, conflicts)
