"""The memory store's outbox and inbox: lists and sets, with the SQL stores' semantics."""

from __future__ import annotations

import builtins
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime

from ..errors import DuplicateMessage
from .delivery_ports import OutboxBacklog, OutboxPort
from .records import InboxMark, OutboxMessage, OutboxQuery, OutboxState, utcnow


class MemoryDelivery(OutboxPort):
    """Outbox messages in write order and inbox marks with when they were recorded."""

    def __init__(self) -> None:
        self._outbox: list[OutboxMessage] = []
        self._inbox: dict[InboxMark, datetime] = {}
        self._ids = itertools.count(1)

    def _check_marks(self, saga_id: str, marks: Sequence[InboxMark]) -> None:
        seen = [m for m in marks if m in self._inbox]
        if seen:
            raise DuplicateMessage(
                f"saga {saga_id!r}: message {seen[0].message_id} was already applied by "
                f"{seen[0].consumer!r}; nothing written"
            )

    def _add_messages(self, messages: Sequence[OutboxMessage]) -> None:
        for message in messages:
            self._outbox.append(replace(message, id=next(self._ids)))
        if messages:
            self.outbox_written.fire()

    def _add_marks(self, marks: Sequence[InboxMark]) -> None:
        now = utcnow()
        for mark in marks:
            self._inbox[mark] = now

    def _drop_messages_of(self, saga_id: str) -> None:
        self._outbox = [m for m in self._outbox if m.saga_id != saga_id]

    async def claim_outbox(
        self, owner: str, *, now: datetime, claim_until: datetime, limit: int
    ) -> builtins.list[OutboxMessage]:
        claimed: list[OutboxMessage] = []
        blocked: set[str] = set()  # sagas with an earlier unpublished message
        for message in self._outbox:
            if message.published_at is not None:
                continue
            if message.saga_id in blocked:
                continue
            blocked.add(message.saga_id)
            due = message.next_attempt_at is None or message.next_attempt_at <= now
            free = message.claimed_until is None or message.claimed_until <= now
            if message.dead_at is None and due and free and len(claimed) < limit:
                message.claimed_by, message.claimed_until = owner, claim_until
                message.attempts += 1
                claimed.append(replace(message))
        return claimed

    def _find(self, ids: Iterable[int]) -> list[OutboxMessage]:
        wanted = set(ids)
        return [m for m in self._outbox if m.id in wanted]

    async def outbox_published(self, ids: Iterable[int], *, at: datetime) -> None:
        for message in self._find(ids):
            message.published_at, message.last_error = at, None
            message.claimed_by = message.claimed_until = None

    async def outbox_failed(
        self, message_id: int, *, error: str, retry_at: datetime | None, now: datetime
    ) -> None:
        for message in self._find([message_id]):
            if message.published_at is None:
                message.claimed_by = message.claimed_until = None
                message.last_error = error[:4000]
                message.next_attempt_at = retry_at
                message.dead_at = None if retry_at is not None else now

    async def list_outbox(self, query: OutboxQuery) -> builtins.list[OutboxMessage]:
        found = [
            replace(m)
            for m in reversed(self._outbox)
            if (query.state is None or m.state is query.state)
            and query.saga_id in (None, m.saga_id)
        ]
        return found[: query.limit]

    async def retry_outbox(self, ids: Iterable[int], *, now: datetime) -> int:
        changed = 0
        for message in self._find(ids):
            if message.state is OutboxState.DEAD:
                message.dead_at = message.next_attempt_at = None
                message.attempts = 0
                changed += 1
        return changed

    async def outbox_backlog(self) -> OutboxBacklog:
        pending = [m for m in self._outbox if m.state is OutboxState.PENDING]
        dead = sum(1 for m in self._outbox if m.state is OutboxState.DEAD)
        oldest = min((m.created_at for m in pending), default=None)
        return OutboxBacklog(len(pending), dead, oldest)

    async def purge_outbox(self, *, published_before: datetime) -> int:
        keep = [
            m for m in self._outbox if m.published_at is None or m.published_at >= published_before
        ]
        purged = len(self._outbox) - len(keep)
        self._outbox = keep
        return purged

    async def inbox_seen(self, mark: InboxMark) -> bool:
        return mark in self._inbox

    async def record_inbox(self, mark: InboxMark, *, at: datetime) -> bool:
        if mark in self._inbox:
            return False
        self._inbox[mark] = at
        return True

    async def purge_inbox(self, *, received_before: datetime) -> int:
        old = [m for m, at in self._inbox.items() if at < received_before]
        for mark in old:
            del self._inbox[mark]
        return len(old)
