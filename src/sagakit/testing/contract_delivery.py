"""The store contract's outbox and inbox: what relays claim, in what order, and marks."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from ..errors import ConcurrencyError, DuplicateMessage
from ..store.base import SagaStore
from ..store.records import (
    Checkpoint,
    InboxMark,
    OutboxMessage,
    OutboxQuery,
    OutboxState,
    SagaRecord,
    utcnow,
)
from .contract_records import advanced, new_saga, started


def message(saga_id: str, n: int) -> OutboxMessage:
    """The ``n``-th message of a saga, with every optional field set."""
    return OutboxMessage(
        saga_id=saga_id,
        topic=f"orders.{n}",
        payload={"n": n, "text": "ünï ✓"},
        headers={"h": "v"},
        saga_type="order",
        step="first",
    )


async def saga_with_messages(store: SagaStore, saga_id: str, count: int) -> SagaRecord:
    """Create a saga and commit one checkpoint carrying ``count`` messages."""
    record = new_saga(saga_id)
    await store.create(record, started(record))
    nxt, expected, events = advanced(record)
    await store.commit(
        Checkpoint(nxt, expected, events, [message(saga_id, n) for n in range(count)])
    )
    return nxt


async def claim(
    store: SagaStore, owner: str = "relay", *, limit: int = 100, after: float = 0
) -> list[OutboxMessage]:
    """Claim for 30 seconds, as seen ``after`` seconds from now."""
    now = utcnow() + timedelta(seconds=after)
    return await store.claim_outbox(
        owner, now=now, claim_until=now + timedelta(seconds=30), limit=limit
    )


class OutboxContract:
    """Messages commit with their checkpoint and reach relays once, in per-saga order."""

    async def test_outbox_messages_commit_with_the_checkpoint(self, store: SagaStore) -> None:
        await saga_with_messages(store, "s", 1)
        # a stale writer's messages never appear
        stale, _, _ = advanced(new_saga("s"))
        with pytest.raises(ConcurrencyError):
            await store.commit(Checkpoint(stale, 1, outbox=[message("s", 9)]))
        pending = await store.list_outbox(OutboxQuery(state=OutboxState.PENDING))
        assert [(m.topic, m.payload, m.headers) for m in pending] == [
            ("orders.0", {"n": 0, "text": "ünï ✓"}, {"h": "v"})
        ]
        got = pending[0]
        assert got.id is not None and len(got.message_id) >= 16
        assert (got.saga_type, got.step, got.attempts, got.state) == (
            "order",
            "first",
            0,
            OutboxState.PENDING,
        )

    async def test_claim_gives_each_sagas_oldest_message_and_counts_an_attempt(
        self, store: SagaStore
    ) -> None:
        await saga_with_messages(store, "a", 3)
        await saga_with_messages(store, "b", 2)
        first = await claim(store)
        assert [(m.saga_id, m.topic, m.attempts) for m in first] == [
            ("a", "orders.0", 1),
            ("b", "orders.0", 1),
        ]
        # claimed messages are not handed to another relay, nor their sagas' later ones
        assert await claim(store, "other") == []
        await store.outbox_published([first[0].id or 0], at=utcnow())
        second = await claim(store, "other")
        assert [(m.saga_id, m.topic) for m in second] == [("a", "orders.1")]
        # a claim that ran out (its relay died) is handed out again, with the same id
        again = await claim(store, "third", after=60)
        assert {(m.saga_id, m.topic) for m in again} == {("a", "orders.1"), ("b", "orders.0")}
        b0 = next(m for m in again if m.saga_id == "b")
        assert b0.message_id == first[1].message_id and b0.attempts == 2

    async def test_a_failing_message_holds_back_only_its_own_saga(self, store: SagaStore) -> None:
        await saga_with_messages(store, "bad", 2)
        await saga_with_messages(store, "good", 2)
        bad, good = await claim(store)
        now = utcnow()
        await store.outbox_failed(
            bad.id or 0, error="no route", retry_at=now + timedelta(seconds=10), now=now
        )
        await store.outbox_published([good.id or 0], at=now)
        # not due yet: only the other saga's next message comes
        others = await claim(store)
        assert [(m.saga_id, m.topic) for m in others] == [("good", "orders.1")]
        await store.outbox_published([others[0].id or 0], at=now)
        # due: the failed one comes again, before its saga's later messages
        due = await claim(store, after=20)
        assert [(m.saga_id, m.topic, m.last_error) for m in due] == [
            ("bad", "orders.0", "no route")
        ]
        # dead: it stays unpublished and still holds its saga's order
        await store.outbox_failed(due[0].id or 0, error="gave up", retry_at=None, now=utcnow())
        assert await claim(store, after=60) == []
        dead = await store.list_outbox(OutboxQuery(state=OutboxState.DEAD))
        assert [(m.saga_id, m.topic, m.state) for m in dead] == [
            ("bad", "orders.0", OutboxState.DEAD)
        ]
        backlog = await store.outbox_backlog()
        assert (backlog.pending, backlog.dead) == (1, 1) and backlog.oldest_pending_at is not None
        # retried by an operator: pending again, from attempt 1
        assert await store.retry_outbox([dead[0].id or 0], now=utcnow()) == 1
        revived = await claim(store, after=60)
        assert [(m.topic, m.attempts) for m in revived] == [("orders.0", 1)]

    async def test_published_messages_are_purged_after_retention(self, store: SagaStore) -> None:
        await saga_with_messages(store, "p", 2)
        (first,) = await claim(store)
        await store.outbox_published([first.id or 0], at=utcnow() - timedelta(days=8))
        assert await store.purge_outbox(published_before=utcnow() - timedelta(days=7)) == 1
        left = await store.list_outbox(OutboxQuery())
        assert [m.topic for m in left] == ["orders.1"]
        assert (await store.outbox_backlog()).pending == 1

    async def test_two_relays_claiming_at_once_get_disjoint_messages(
        self, store: SagaStore, tmp_path: Path
    ) -> None:
        persistent = getattr(self, "persistent", True)
        if not persistent:
            pytest.skip("one process holds this store: there is no second relay to race")
        for i in range(40):
            await saga_with_messages(store, f"r{i}", 2)
        other = await self.make_store(tmp_path)  # type: ignore[attr-defined]
        await other.open()
        try:
            claimed: list[OutboxMessage] = []
            for _ in range(4):  # rounds: every saga's second message comes after its first
                batches = await asyncio.gather(
                    *(
                        claim(s, f"relay{n}", limit=15)
                        for n, s in enumerate((store, other, store, other))
                    )
                )
                ids = [m.id for batch in batches for m in batch]
                assert len(ids) == len(set(ids)), "two relays were given the same message"
                round_ = [m for batch in batches for m in batch]
                assert len({m.saga_id for m in round_}) == len(round_), (
                    "two messages of one saga at once"
                )
                claimed += round_
                await store.outbox_published([m.id or 0 for m in round_], at=utcnow())
            assert sorted((m.saga_id, m.topic) for m in claimed) == sorted(
                (f"r{i}", f"orders.{n}") for i in range(40) for n in range(2)
            )
        finally:
            await other.close()


class InboxContract:
    """A message is applied once per consumer: its mark is written with the checkpoint."""

    async def test_a_marked_checkpoint_is_refused_the_second_time(self, store: SagaStore) -> None:
        record = new_saga("i")
        await store.create(record, started(record))
        mark = InboxMark("billing", "m-1")
        assert await store.inbox_seen(mark) is False
        nxt, expected, events = advanced(record)
        await store.commit(Checkpoint(nxt, expected, events, inbox=[mark]))
        assert await store.inbox_seen(mark) is True
        # the same message again, at the saga's current version: refused, nothing written
        again, expected2, events2 = advanced(nxt)
        with pytest.raises(DuplicateMessage):
            await store.commit(Checkpoint(again, expected2, events2, inbox=[mark]))
        got = await store.get("i")
        assert got is not None and got.version == nxt.version
        assert len(await store.events("i")) == 2
        # another consumer may apply the same message id
        await store.commit(
            Checkpoint(again, expected2, events2, inbox=[InboxMark("shipping", "m-1")])
        )

    async def test_marks_without_a_checkpoint_and_their_retention(self, store: SagaStore) -> None:
        old, new = InboxMark("c", "old"), InboxMark("c", "new")
        assert await store.record_inbox(old, at=utcnow() - timedelta(days=8)) is True
        assert await store.record_inbox(old, at=utcnow()) is False
        assert await store.record_inbox(new, at=utcnow()) is True
        assert await store.purge_inbox(received_before=utcnow() - timedelta(days=7)) == 1
        assert (await store.inbox_seen(old), await store.inbox_seen(new)) == (False, True)
