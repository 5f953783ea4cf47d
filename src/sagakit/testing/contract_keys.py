"""Contract: keys compare byte for byte on every store (no case, padding or Unicode folding)."""

from __future__ import annotations

from datetime import timedelta

from ..status import SagaStatus
from ..store.base import SagaStore
from ..store.records import SagaQuery, utcnow
from .contract_records import new_saga, started

#: Pairs of ids that a case-insensitive, space-padding or normalising store would confuse.
LOOKALIKE_IDS = (
    ("Order-1", "order-1"),
    ("x", "x "),
    ("\u00e9", "e\u0301"),  # "é" composed and decomposed
)


class KeyContract:
    """Ids, saga types and event keys that differ in any byte are different keys."""

    async def test_lookalike_ids_are_distinct_sagas(self, store: SagaStore) -> None:
        for first_id, second_id in LOOKALIKE_IDS:
            # Given a saga with one id
            first = new_saga(first_id, data={"owner": "alice"})
            await store.create(first, started(first))
            # When a saga is started with an id that differs only by case, padding or form
            second = new_saga(second_id, data={"owner": "bob"})
            stored, created = await store.create(second, started(second))
            # I expect a second saga with its own context, not the first one's
            assert created is True, (first_id, second_id)
            assert stored.data == {"owner": "bob"}
            got_first, got_second = await store.get(first_id), await store.get(second_id)
            assert got_first is not None and got_first.id == first_id
            assert got_first.data == {"owner": "alice"}
            assert got_second is not None and got_second.id == second_id
            assert got_second.data == {"owner": "bob"}
            assert [e.saga_id for e in await store.events(first_id)] == [first_id]
            assert [e.saga_id for e in await store.events(second_id)] == [second_id]

    async def test_lookups_by_type_and_id_match_exact_bytes(self, store: SagaStore) -> None:
        now = utcnow()
        for saga_id, saga_type in (("a", "Order"), ("b", "order"), ("c", "order ")):
            record = new_saga(saga_id, saga_type=saga_type, status=SagaStatus.PENDING)
            await store.create(record, started(record))
        listed = await store.list(SagaQuery(saga_type="order"))
        assert [r.id for r in listed] == ["b"]
        claimed = await store.claim(
            "w", now=now, lease_until=now + timedelta(seconds=30), limit=10, saga_types=["Order"]
        )
        assert [r.id for r in claimed] == ["a"]
        claimed = await store.claim(
            "w", now=now, lease_until=now + timedelta(seconds=30), limit=10, saga_ids=["C", "c "]
        )
        assert claimed == []
