"""The messaging ports: the outbox the relay drains, the inbox consumers deduplicate with."""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from .records import InboxMark, OutboxMessage, OutboxQuery


@dataclass(slots=True, frozen=True)
class OutboxBacklog:
    """How far behind the relay is: for metrics, health and alerts."""

    pending: int
    dead: int
    #: When the oldest pending message was written; ``None`` when nothing is pending.
    oldest_pending_at: datetime | None


class OutboxSignal:
    """In-process wake-up: called whenever this process commits outbox messages."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[], None]] = []

    def add(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (it must not block) after every commit with outbox messages."""
        self._callbacks.append(callback)

    def remove(self, callback: Callable[[], None]) -> None:
        """Stop calling ``callback``."""
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def fire(self) -> None:
        """Tell every listener that messages were written."""
        for callback in list(self._callbacks):
            callback()


class OutboxPort(ABC):
    """Messages written with checkpoints, claimed in batches by relays, then marked.

    Per-saga order: a relay is only ever given the oldest unpublished message of each
    saga, so a saga's messages reach the broker in the order they were written, and one
    that keeps failing (or is dead) holds back only the later messages of its own saga.
    """

    _outbox_signal: OutboxSignal | None = None

    @property
    def outbox_written(self) -> OutboxSignal:
        """Fired after each commit of this process that wrote outbox messages."""
        if self._outbox_signal is None:
            self._outbox_signal = OutboxSignal()
        return self._outbox_signal

    async def listen_outbox(
        self, callback: Callable[[], None]
    ) -> Callable[[], Awaitable[None]] | None:
        """Call ``callback`` when any process writes outbox messages, if the store can tell.

        Return the unsubscriber, or ``None``: relays then rely on ``outbox_written`` and
        polling.
        """
        return None

    @abstractmethod
    async def claim_outbox(
        self, owner: str, *, now: datetime, claim_until: datetime, limit: int
    ) -> builtins.list[OutboxMessage]:
        """Claim up to ``limit`` messages for ``owner`` until ``claim_until``, oldest first.

        A message is claimable when it is pending, due (its retry time passed) and not
        claimed by a relay whose claim is still running; for each saga only its oldest
        unpublished message is. Each claimed message's ``attempts`` grows by one. Two
        relays claiming at once get disjoint messages.
        """

    @abstractmethod
    async def outbox_published(self, ids: Iterable[int], *, at: datetime) -> None:
        """Record that the broker confirmed the messages with these row ids."""

    @abstractmethod
    async def outbox_failed(
        self, message_id: int, *, error: str, retry_at: datetime | None, now: datetime
    ) -> None:
        """Record a failed attempt: retry at ``retry_at``, or, when ``None``, the message is dead."""

    @abstractmethod
    async def list_outbox(self, query: OutboxQuery) -> builtins.list[OutboxMessage]:
        """Return outbox messages matching ``query``, newest first."""

    @abstractmethod
    async def retry_outbox(self, ids: Iterable[int], *, now: datetime) -> int:
        """Make dead messages pending again with a fresh attempt count; return how many."""

    @abstractmethod
    async def outbox_backlog(self) -> OutboxBacklog:
        """Count pending and dead messages and date the oldest pending one."""

    @abstractmethod
    async def purge_outbox(self, *, published_before: datetime) -> int:
        """Delete messages published before ``published_before``; return how many."""


class InboxPort(ABC):
    """Which messages each consumer has applied; marks are written with checkpoints."""

    @abstractmethod
    async def inbox_seen(self, mark: InboxMark) -> bool:
        """Tell whether ``mark.consumer`` already applied ``mark.message_id``."""

    @abstractmethod
    async def record_inbox(self, mark: InboxMark, *, at: datetime) -> bool:
        """Record a message applied without a checkpoint; return ``False`` if it already was."""

    @abstractmethod
    async def purge_inbox(self, *, received_before: datetime) -> int:
        """Forget marks older than ``received_before`` (after the broker's redelivery window)."""
