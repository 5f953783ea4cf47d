"""The store contract's parked rows: state machine instances and sagas at a wait step.

Their ``deferred`` JSON round-trips, ``claim_due`` leases those whose time has come, a
checkpoint may start new sagas with it, and listings filter by kind and state.
"""

from __future__ import annotations

from datetime import timedelta

from ..status import SagaStatus
from ..store.base import SagaStore
from ..store.records import Checkpoint, SagaQuery, utcnow
from .contract_records import advanced, new_saga, started


class ParkedContract:
    """What state machines and waiting sagas ask of a store."""

    async def test_deferred_round_trips_and_is_rewritten_by_a_checkpoint(
        self, store: SagaStore
    ) -> None:
        deferred = {"schedules": {"Timeout": {"due": "2030-01-01T00:00:00+00:00", "id": "x"}}}
        rec = new_saga("m:1", kind="state_machine", status=SagaStatus.ACTIVE, deferred=deferred)
        await store.create(rec, [])
        got = await store.get("m:1")
        assert got is not None and got.deferred == deferred and got.kind == "state_machine"
        nxt, expected, events = advanced(got, deferred={"held": [{"event": "E"}]})
        await store.commit(Checkpoint(nxt, expected, events))
        again = await store.get("m:1")
        assert again is not None and again.deferred == {"held": [{"event": "E"}]}

    async def test_claim_due_leases_parked_rows_whose_time_came(self, store: SagaStore) -> None:
        now = utcnow()
        rows = [
            new_saga("due", status=SagaStatus.ACTIVE, next_attempt_at=now - timedelta(seconds=5)),
            new_saga("wait", status=SagaStatus.WAITING, next_attempt_at=now - timedelta(seconds=1)),
            new_saga("later", status=SagaStatus.ACTIVE, next_attempt_at=now + timedelta(hours=1)),
            new_saga("never", status=SagaStatus.ACTIVE),
            new_saga("other", saga_type="other", status=SagaStatus.ACTIVE, next_attempt_at=now),
            new_saga("running", status=SagaStatus.RUNNING, next_attempt_at=now),
        ]
        for r in rows:
            await store.create(r, [])
        lease = now + timedelta(seconds=30)
        claimed = await store.claim_due(
            "w1", now=now, lease_until=lease, limit=10, saga_types=["order"]
        )
        assert [r.id for r in claimed] == ["due", "wait"]  # the earliest due first
        assert {(r.lease_owner, r.version) for r in claimed} == {("w1", 2)}
        # a live lease keeps them from a second claimer
        second = await store.claim_due(
            "w2", now=now, lease_until=lease, limit=10, saga_types=["order"]
        )
        assert second == []

    async def test_ordinary_claims_never_take_parked_rows(self, store: SagaStore) -> None:
        now = utcnow()
        for status in (SagaStatus.ACTIVE, SagaStatus.WAITING):
            r = new_saga(f"parked-{status.value}", status=status)
            await store.create(r, [])
        claimed = await store.claim("w", now=now, lease_until=now + timedelta(seconds=30), limit=10)
        assert claimed == []

    async def test_a_checkpoint_starts_new_sagas_with_it_once(self, store: SagaStore) -> None:
        parent = new_saga("m:2", kind="state_machine", status=SagaStatus.ACTIVE)
        await store.create(parent, [])
        child = new_saga("child-1", status=SagaStatus.PENDING)
        nxt, expected, events = advanced(parent)
        await store.commit(Checkpoint(nxt, expected, events, starts=[(child, started(child))]))
        got = await store.get("child-1")
        assert got is not None and got.status == SagaStatus.PENDING
        assert [e.type for e in await store.events("child-1")] == ["saga_started"]
        # a second start of the same id leaves the first as it is
        again = new_saga("child-1", status=SagaStatus.PENDING, data={"other": True})
        nxt2, expected2, events2 = advanced(nxt)
        await store.commit(Checkpoint(nxt2, expected2, events2, starts=[(again, started(again))]))
        kept = await store.get("child-1")
        assert kept is not None and kept.data == child.data
        assert len(await store.events("child-1")) == 1

    async def test_list_filters_by_kind_and_state(self, store: SagaStore) -> None:
        rows = [
            new_saga("a", kind="state_machine", status=SagaStatus.ACTIVE, current_step="Paid"),
            new_saga("b", kind="state_machine", status=SagaStatus.ACTIVE, current_step="New"),
            new_saga("c", current_step="Paid"),
        ]
        for r in rows:
            await store.create(r, [])
        machines = await store.list(SagaQuery(kind="state_machine"))
        assert sorted(r.id for r in machines) == ["a", "b"]
        paid = await store.list(SagaQuery(kind="state_machine", state="Paid"))
        assert [r.id for r in paid] == ["a"]
