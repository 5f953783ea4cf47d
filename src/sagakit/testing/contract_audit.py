"""Contract: the audit queries operators write by hand, answered by the store."""

from __future__ import annotations

from datetime import timedelta

from ..status import Reason, SagaStatus
from ..store.base import SagaStore
from ..store.records import Checkpoint, EventQuery, SagaEvent, SagaQuery, utcnow
from .contract_records import advanced, new_saga


class AuditContract:
    """Sagas by reason, finish time and starter; events by type, time, type of saga, actor."""

    async def _plant(self, store: SagaStore) -> None:
        now = utcnow()
        plan = [
            ("cancelled", "order", SagaStatus.COMPENSATED, Reason.CANCELLED, "alice", 2),
            ("declined", "order", SagaStatus.COMPENSATED, Reason.ERROR, "bob", 30),
            ("late", "refund", SagaStatus.COMPENSATED, Reason.TIMEOUT, "alice", 1),
            ("done", "order", SagaStatus.COMPLETED, None, "bob", 1),
            ("running", "order", SagaStatus.RUNNING, None, None, None),
        ]
        for saga_id, saga_type, status, reason, actor, hours_ago in plan:
            record = new_saga(saga_id, saga_type=saga_type)
            await store.create(
                record, [SagaEvent(saga_id=saga_id, seq=1, type="saga_started", actor=actor)]
            )
            finished = now - timedelta(hours=hours_ago) if hours_ago is not None else None
            nxt, expected, _ = advanced(record, status=status, reason=reason, completed_at=finished)
            events = [
                SagaEvent(
                    saga_id=saga_id,
                    seq=nxt.last_seq,
                    type="compensation_started" if reason else "step_completed",
                    at=finished or now,
                    actor=actor,
                )
            ]
            await store.commit(Checkpoint(nxt, expected, events))

    async def test_sagas_filter_by_reason_finish_time_and_starter(self, store: SagaStore) -> None:
        await self._plant(store)
        by_reason = await store.list(SagaQuery(reasons=(Reason.CANCELLED, Reason.TIMEOUT)))
        assert {r.id for r in by_reason} == {"cancelled", "late"}
        recent = await store.list(SagaQuery(finished_after=utcnow() - timedelta(hours=3)))
        assert {r.id for r in recent} == {"cancelled", "late", "done"}
        by_alice = await store.list(SagaQuery(started_by="alice"))
        assert {r.id for r in by_alice} == {"cancelled", "late"}

    async def test_events_filter_by_type_time_saga_type_and_actor(self, store: SagaStore) -> None:
        await self._plant(store)
        day = utcnow() - timedelta(hours=24)
        rollbacks = await store.find_events(EventQuery(types=("compensation_started",), since=day))
        assert {e.saga_id for e in rollbacks} == {"cancelled", "late"}  # "declined" is older
        by_bob = await store.find_events(EventQuery(types=("compensation_started",), actor="bob"))
        assert [e.saga_id for e in by_bob] == ["declined"]
        refunds = await store.find_events(EventQuery(saga_type="refund"))
        assert {e.saga_id for e in refunds} == {"late"} and len(refunds) == 2
        newest_first = await store.find_events(EventQuery(saga_id="declined"))
        assert len(newest_first) == 2 and newest_first[0].at >= newest_first[1].at
        assert len(await store.find_events(EventQuery(limit=3))) == 3
