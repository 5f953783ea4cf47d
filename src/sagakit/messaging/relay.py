"""The relay: claims outbox messages, publishes them, marks them after the broker confirms.

Nothing is marked published unconfirmed, so a crash or an outage can only publish a
message again (with the same ``message_id``), never lose it. A saga's messages leave in
the order they were written: the store hands out only the oldest unpublished message of
each saga, so a failing one holds back its own saga's later messages and nobody else's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..errors import StoreUnavailable
from ..hooks import SagaHooks
from ..store.base import SagaStore
from ..store.records import OutboxMessage, utcnow
from .broker import Broker, BrokerUnavailable
from .envelope import Envelope

log = logging.getLogger("sagakit.relay")

#: Waits before a failed message's next attempt, seconds (the last repeats).
RETRY_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
#: Waits while the broker or the store is unreachable, seconds (the last repeats).
OUTAGE_BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass(slots=True)
class RelayCounters:
    """What one relay did since it started."""

    published: int = 0
    failed: int = 0
    dead: int = 0
    outages: int = 0


class Relay:
    """Moves outbox messages to the broker; run one per worker process (or ``sagakit relay``)."""

    def __init__(
        self,
        store: SagaStore,
        broker: Broker,
        *,
        owner: str,
        batch: int = 100,
        claim_seconds: float = 30.0,
        poll_interval: float = 1.0,
        max_attempts: int = 10,
        hooks: SagaHooks | None = None,
    ) -> None:
        self.store = store
        self.hooks = hooks or SagaHooks()
        self.broker = broker
        self.owner = owner
        self.batch = batch
        self.claim_seconds = claim_seconds
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.counters = RelayCounters()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Finish the batch in flight, then return from ``run``."""
        self._stopping.set()
        self._wake.set()

    def wake(self) -> None:
        """Look for messages now (called when this process commits some)."""
        self._wake.set()

    async def run(self, *, burst: bool = False) -> RelayCounters:
        """Publish until ``stop()``; with ``burst``, until no message is due.

        Three batches are in hand at once: one is published while the next is claimed and
        the previous one's marks are written. Neither can break a saga's order: a claimed
        or published-but-unmarked message is still its saga's oldest unpublished one, so
        no claim takes a later message of its saga until it is marked.
        """
        self.store.outbox_written.add(self.wake)
        unlisten = await self.store.listen_outbox(self.wake)
        outage = 0
        recording: asyncio.Task[int] | None = None
        ahead: asyncio.Task[list[OutboxMessage]] | None = None
        claimed: list[OutboxMessage] | None = None
        try:
            # once stopped, a batch claimed ahead is still published, unless the broker or
            # the store is down (then its claim runs out and it is sent again later)
            while not self._stopping.is_set() or (claimed and not outage):
                batch: tuple[list[OutboxMessage], list[BaseException | None]] | None = None
                marked = False
                try:
                    if claimed is None:
                        claimed = await self._claim()
                    if claimed and not self._stopping.is_set():
                        ahead = asyncio.create_task(self._claim())
                    if claimed:
                        batch = (claimed, await self._publish(claimed))
                    claimed = None
                    previous, recording = recording, None
                    if batch is not None:
                        recording = asyncio.create_task(self._record(*batch))
                    if previous is not None:
                        # its outage, if any, surfaces here; and what it marked may have
                        # made the next messages of its sagas due
                        marked = bool(await previous)
                    if ahead is not None:
                        claimed, ahead = await ahead, None
                    outage = 0
                except (BrokerUnavailable, StoreUnavailable) as e:
                    claimed, ahead = await _outcome(ahead), None  # kept: publish it next
                    self.counters.outages += 1
                    wait = OUTAGE_BACKOFF[min(outage, len(OUTAGE_BACKOFF) - 1)]
                    outage += 1
                    log.warning("relay: %s; retrying in %.1fs", e, wait)
                    await self._sleep(wait)
                    continue
                except Exception:  # a relay that stops silently would strand every message
                    claimed, ahead = await _outcome(ahead), None
                    wait = OUTAGE_BACKOFF[-1]
                    log.exception("relay: unexpected failure; retrying in %.1fs", wait)
                    await self._sleep(wait)
                    continue
                if batch is not None or recording is not None or marked or claimed:
                    continue
                if burst:  # nothing due now: what waits for a retry is left for later
                    break
                await self._sleep(self.poll_interval)
        finally:
            # a batch claimed ahead and not published is sent again when its claim ends
            await _outcome(ahead)
            if recording is not None:
                with contextlib.suppress(Exception):  # unmarked: re-sent after the claim
                    await recording
            self.store.outbox_written.remove(self.wake)
            if unlisten is not None:
                await unlisten()
        return self.counters

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    async def relay_once(self) -> int:
        """Claim one batch, publish it and mark it; return how many were published."""
        claimed = await self._claim()
        if not claimed:
            return 0
        return await self._record(claimed, await self._publish(claimed))

    async def _claim(self) -> list[OutboxMessage]:
        """Claim up to a batch of messages, each the oldest unpublished of its saga."""
        now = utcnow()
        return await self.store.claim_outbox(
            self.owner,
            now=now,
            claim_until=now + timedelta(seconds=self.claim_seconds),
            limit=self.batch,
        )

    async def _publish(self, claimed: list[OutboxMessage]) -> list[BaseException | None]:
        """Publish a claimed batch; return each message's outcome (None or its error)."""
        # one message per saga in a batch, so publishing them at once keeps every order
        return await self.broker.publish_many([Envelope.of(m) for m in claimed])

    async def _record(
        self, claimed: list[OutboxMessage], outcomes: list[BaseException | None]
    ) -> int:
        """Mark the confirmed messages published and schedule the others; raise an outage."""
        confirmed = [m for m, error in zip(claimed, outcomes, strict=True) if error is None]
        await self.store.outbox_published(
            [m.id for m in confirmed if m.id is not None], at=utcnow()
        )
        self.counters.published += len(confirmed)
        if confirmed:
            self.hooks.messages_published(confirmed)
        outage: BaseException | None = None
        for message, error in zip(claimed, outcomes, strict=True):
            if isinstance(error, BaseException):
                if not isinstance(error, Exception):
                    raise error  # cancellation: the claim runs out, another relay sends it
                await self._failed(message, error)
                if isinstance(error, BrokerUnavailable):
                    outage = error
        if outage is not None:
            raise outage
        return len(confirmed)

    async def _failed(self, message: OutboxMessage, error: Exception) -> None:
        """Schedule the next attempt; a refused message that used them all is dead."""
        now = utcnow()
        assert message.id is not None
        # an unreachable broker is nobody's fault: never let an outage kill a message
        gave_up = message.attempts >= self.max_attempts and not isinstance(error, BrokerUnavailable)
        retry_at: datetime | None = None
        if not gave_up:
            wait = RETRY_BACKOFF[min(message.attempts - 1, len(RETRY_BACKOFF) - 1)]
            retry_at = now + timedelta(seconds=wait)
        else:
            log.error(
                "outbox message %s (%s, saga %s) is dead after %d attempts: %s",
                message.id,
                message.topic,
                message.saga_id,
                message.attempts,
                error,
            )
        await self.store.outbox_failed(message.id, error=str(error), retry_at=retry_at, now=now)
        # counted once written, so whoever reads the counters finds the rows changed
        self.counters.failed += 1
        self.counters.dead += retry_at is None
        self.hooks.message_failed(message, error, dead=retry_at is None)


async def _outcome(task: asyncio.Task[list[OutboxMessage]] | None) -> list[OutboxMessage] | None:
    """What ``task`` claimed, or ``None`` if there is no task or its claim failed."""
    if task is None:
        return None
    try:
        return await task
    except Exception:  # a failed claim took nothing: the messages stay free
        return None
