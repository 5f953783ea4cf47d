"""Consumers that apply a message once: the inbox remembers what each consumer applied.

The broker delivers at least once (a consumer that dies before it acknowledges gets the
message again). A ``Consumer`` looks the message id up in the inbox before it calls the
handler and records it after, then acknowledges: a redelivery after the record is
recognised and skipped. A handler that writes a saga checkpoint puts the inbox mark in
that checkpoint instead, so applying and recording are one transaction.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass

from ..hooks import SagaHooks
from ..store.base import SagaStore
from ..store.records import InboxMark, utcnow
from .broker import Handler
from .envelope import Envelope

#: Crash tests: ``SAGAKIT_KILL_AFTER=inbox_marked:<n>`` SIGKILLs the consumer right after
#: its n-th inbox mark is recorded, before the broker hears the acknowledgement.
_KILL_SPEC = "inbox_marked:"


@dataclass(slots=True)
class Subscription:
    """A handler of ``topics`` on the durable queue ``queue`` (also its inbox name)."""

    queue: str
    topics: tuple[str, ...]
    handler: Handler
    max_deliveries: int = 5
    #: False: the handler writes the inbox mark in its own transaction (``rt.send``), so
    #: no consumer inbox wraps it.
    own_inbox: bool = True


class Consumer:
    """Calls ``handler`` once per message id for the consumer ``name``."""

    def __init__(
        self, store: SagaStore, name: str, handler: Handler, hooks: SagaHooks | None = None
    ) -> None:
        self.store = store
        self.name = name
        self.handler = handler
        self.hooks = hooks or SagaHooks()
        #: Messages applied, and deliveries recognised as already applied.
        self.applied = 0
        self.duplicates = 0
        spec = os.environ.get("SAGAKIT_KILL_AFTER", "")
        self._kill_at = int(spec[len(_KILL_SPEC) :]) if spec.startswith(_KILL_SPEC) else None

    async def __call__(self, envelope: Envelope) -> None:
        mark = InboxMark(self.name, envelope.message_id)
        if await self.store.inbox_seen(mark):
            self._duplicate(envelope)
            return
        await self.handler(envelope)
        if not await self.store.record_inbox(mark, at=utcnow()):
            self._duplicate(envelope)  # another delivery of it was applied meanwhile
            return
        self.applied += 1
        if self._kill_at is not None and self.applied >= self._kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def _duplicate(self, envelope: Envelope) -> None:
        self.duplicates += 1
        self.hooks.message_duplicate(self.name, envelope.message_id)


def subscription(
    topics: str | Sequence[str], handler: Handler, *, queue: str | None, max_deliveries: int
) -> Subscription:
    """Check a ``Runtime.consume`` call's arguments; the queue defaults to the handler's name."""
    from ..errors import ConfigurationError

    wanted = (topics,) if isinstance(topics, str) else tuple(topics)
    if not wanted or not all(isinstance(t, str) and t for t in wanted):
        raise ConfigurationError(f"consume: topics must be non-empty strings, got {topics!r}")
    if not callable(handler):
        raise ConfigurationError(f"consume: handler must be an async function, got {handler!r}")
    name = queue or f"{handler.__module__}.{getattr(handler, '__qualname__', 'handler')}"
    if max_deliveries < 1:
        raise ConfigurationError(f"consume: max_deliveries must be >= 1, got {max_deliveries}")
    return Subscription(name, wanted, handler, max_deliveries)
