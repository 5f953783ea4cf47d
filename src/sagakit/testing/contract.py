"""The store contract: one suite of behaviour that every ``SagaStore`` adapter must pass.

Subclass ``StoreContract`` in a pytest module and implement ``make_store``::

    class TestMyStore(StoreContract):
        async def make_store(self, tmp_path):
            return MyStore(...)

Every test gets a fresh store from ``make_store`` (its own file, schema or database).
Needs pytest and pytest-asyncio (``pip install sagakit[dev]``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from ..errors import ConcurrencyError
from ..status import Reason, SagaStatus
from ..store.base import SagaStore
from ..store.records import Checkpoint, SagaQuery, utcnow
from .contract_audit import AuditContract
from .contract_claims import ClaimContract
from .contract_delivery import InboxContract, OutboxContract
from .contract_keys import KeyContract
from .contract_lifecycle import LifecycleContract
from .contract_parked import ParkedContract
from .contract_records import advanced, new_saga, started


class StoreContract(
    KeyContract,
    LifecycleContract,
    AuditContract,
    ClaimContract,
    OutboxContract,
    InboxContract,
    ParkedContract,
):
    """Behaviour every saga store must show. Subclass and implement ``make_store``."""

    #: Whether data survives ``close()`` and a new store on the same location.
    persistent: bool = True

    async def make_store(self, tmp_path: Path) -> SagaStore:
        """Return a new, unopened store with nothing in it."""
        raise NotImplementedError

    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[SagaStore]:
        store = await self.make_store(tmp_path)
        await store.open()
        try:
            yield store
        finally:
            await store.close()

    # -- create and read ------------------------------------------------------------------

    async def test_create_then_get_round_trips_every_field(self, store: SagaStore) -> None:
        # Given a saga with every optional field set
        now = utcnow()
        record = new_saga(
            "s-1",
            status=SagaStatus.RUNNING,
            reason=Reason.ERROR,
            step_index=2,
            attempt=3,
            next_attempt_at=now + timedelta(seconds=5),
            timeout_at=now + timedelta(minutes=5),
            lease_owner="w1",
            lease_expires_at=now + timedelta(seconds=30),
            error_type="builtins.ValueError",
            error_message="bad ünïcode ✓",
            error_stack="Traceback...",
        )
        # When it is created and read back
        stored, created = await store.create(record, started(record))
        got = await store.get("s-1")
        # I expect every field back, datetimes as aware UTC to the millisecond
        assert created is True
        assert stored.id == "s-1"
        assert got is not None
        for name in (
            "id",
            "saga_type",
            "status",
            "reason",
            "data",
            "step_index",
            "attempt",
            "version",
            "lease_owner",
            "definition_hash",
            "current_step",
            "error_type",
            "error_message",
            "error_stack",
            "last_seq",
        ):
            assert getattr(got, name) == getattr(record, name), name
        for name in ("next_attempt_at", "timeout_at", "lease_expires_at", "created_at"):
            value = getattr(got, name)
            assert value.tzinfo is not None, name
            assert abs((value - getattr(record, name)).total_seconds()) < 0.001, name

    async def test_get_unknown_returns_none(self, store: SagaStore) -> None:
        assert await store.get("nope") is None
        assert await store.events("nope") == []

    async def test_create_existing_id_returns_existing_and_writes_nothing(
        self, store: SagaStore
    ) -> None:
        first = new_saga("dup", data={"v": 1})
        await store.create(first, started(first))
        # When the same id is started again with other data
        again = new_saga("dup", data={"v": 2})
        stored, created = await store.create(again, started(again))
        # I expect the first saga back, untouched, and one history event only
        assert created is False
        assert stored.data == {"v": 1}
        assert len(await store.events("dup")) == 1

    async def test_concurrent_creates_of_one_id_create_once(self, store: SagaStore) -> None:
        records = [new_saga("race", data={"v": i}) for i in range(10)]
        results = await asyncio.gather(*(store.create(r, started(r)) for r in records))
        assert sum(created for _, created in results) == 1
        assert len({stored.data["v"] for stored, _ in results}) == 1
        assert len(await store.events("race")) == 1

    # -- optimistic locking ---------------------------------------------------------------

    async def test_save_applies_record_and_events_at_expected_version(
        self, store: SagaStore
    ) -> None:
        record = new_saga("s")
        await store.create(record, started(record))
        nxt, expected, events = advanced(record, step_index=1, data={"n": 2})
        await store.commit(Checkpoint(nxt, expected, events))
        got = await store.get("s")
        assert got is not None
        assert (got.version, got.step_index, got.data) == (2, 1, {"n": 2})
        assert [e.type for e in await store.events("s")] == ["saga_started", "step_completed"]

    async def test_stale_writer_gets_concurrency_error_and_writes_nothing(
        self, store: SagaStore
    ) -> None:
        record = new_saga("s")
        await store.create(record, started(record))
        # Given two writers that both read version 1
        a, expected_a, events_a = advanced(record, data={"by": "a"})
        b, expected_b, events_b = advanced(record, data={"by": "b"})
        # When both write
        await store.commit(Checkpoint(a, expected_a, events_a))
        with pytest.raises(ConcurrencyError):
            await store.commit(Checkpoint(b, expected_b, events_b))
        # I expect the first write kept whole and nothing of the second
        got = await store.get("s")
        assert got is not None and got.data == {"by": "a"} and got.version == 2
        assert len(await store.events("s")) == 2

    async def test_simultaneous_writers_exactly_one_wins(self, store: SagaStore) -> None:
        record = new_saga("s")
        await store.create(record, started(record))
        writes = [advanced(record, data={"by": i}) for i in range(8)]
        results = await asyncio.gather(
            *(store.commit(Checkpoint(r, v, e)) for r, v, e in writes),
            return_exceptions=True,
        )
        winners = [i for i, res in enumerate(results) if res is None]
        assert len(winners) == 1
        assert all(isinstance(res, ConcurrencyError) for res in results if res is not None)
        got = await store.get("s")
        assert got is not None and got.data == {"by": winners[0]}
        assert len(await store.events("s")) == 2

    async def test_save_of_missing_saga_is_a_concurrency_error(self, store: SagaStore) -> None:
        ghost, expected, events = advanced(new_saga("ghost"))
        with pytest.raises(ConcurrencyError):
            await store.commit(Checkpoint(ghost, expected, events))

    async def test_many_sagas_saved_at_once_each_land(self, store: SagaStore) -> None:
        records = [new_saga(f"m{i}") for i in range(50)]
        for r in records:
            await store.create(r, started(r))
        writes = [advanced(r, step_index=1) for r in records]
        await asyncio.gather(*(store.commit(Checkpoint(r, v, e)) for r, v, e in writes))
        for r in records:
            got = await store.get(r.id)
            assert got is not None and got.version == 2 and got.step_index == 1
            assert len(await store.events(r.id)) == 2

    # -- listing --------------------------------------------------------------------------

    async def test_list_filters_and_orders_newest_first(self, store: SagaStore) -> None:
        base = utcnow()
        for i, (status, kind) in enumerate(
            [
                (SagaStatus.COMPLETED, "order"),
                (SagaStatus.FAILED, "order"),
                (SagaStatus.FAILED, "refund"),
                (SagaStatus.RUNNING, "order"),
            ]
        ):
            r = new_saga(
                f"id-{i}_x", status=status, saga_type=kind, created_at=base + timedelta(seconds=i)
            )
            await store.create(r, started(r))
        all_ids = [r.id for r in await store.list()]
        assert all_ids == ["id-3_x", "id-2_x", "id-1_x", "id-0_x"]
        failed = await store.list(SagaQuery(statuses=(SagaStatus.FAILED,)))
        assert {r.id for r in failed} == {"id-1_x", "id-2_x"}
        orders = await store.list(SagaQuery(saga_type="order", statuses=(SagaStatus.FAILED,)))
        assert [r.id for r in orders] == ["id-1_x"]
        assert [r.id for r in await store.list(SagaQuery(id_contains="2_"))] == ["id-2_x"]
        # "_" and "%" are matched literally, not as wildcards
        assert await store.list(SagaQuery(id_contains="%")) == []
        page = await store.list(SagaQuery(limit=2, offset=1))
        assert [r.id for r in page] == ["id-2_x", "id-1_x"]
        first = await store.list(SagaQuery(limit=2))
        after = await store.list(SagaQuery(limit=2, before=(first[-1].created_at, first[-1].id)))
        assert [r.id for r in after] == ["id-1_x", "id-0_x"]
        newer = await store.list(SagaQuery(created_after=base + timedelta(seconds=1.5)))
        assert {r.id for r in newer} == {"id-2_x", "id-3_x"}
        counts = await store.count_by_status()
        assert counts[SagaStatus.FAILED] == 2 and counts[SagaStatus.RUNNING] == 1
        assert await store.count_by_type() == {
            ("order", SagaStatus.COMPLETED): 1,
            ("order", SagaStatus.FAILED): 1,
            ("refund", SagaStatus.FAILED): 1,
            ("order", SagaStatus.RUNNING): 1,
        }

    async def test_archive_marks_old_finished_sagas_but_never_failed_ones(
        self, store: SagaStore
    ) -> None:
        now = utcnow()
        old = now - timedelta(days=40)
        rows = [
            new_saga("old-done", status=SagaStatus.COMPLETED, completed_at=old),
            new_saga("old-undone", status=SagaStatus.COMPENSATED, completed_at=old),
            new_saga("old-failed", status=SagaStatus.FAILED, completed_at=old),
            new_saga("new-done", status=SagaStatus.COMPLETED, completed_at=now),
            new_saga("running", status=SagaStatus.RUNNING),
        ]
        for r in rows:
            await store.create(r, started(r))
        archived = await store.archive(finished_before=now - timedelta(days=30), now=now)
        assert archived == 2
        assert await store.archive(finished_before=now - timedelta(days=30), now=now) == 0
        visible = await store.list(SagaQuery(include_archived=False))
        assert {r.id for r in visible} == {"old-failed", "new-done", "running"}
        # an archived saga's version moved on, so a stale writer cannot resurrect it
        got = await store.get("old-done")
        assert got is not None and got.archived_at is not None and got.version == 2
        # purge deletes only what was archived before the cutoff, history included
        later = now + timedelta(days=31)
        assert await store.purge(archived_before=now - timedelta(days=1)) == 0
        assert await store.purge(archived_before=later, dry_run=True) == 2
        assert await store.get("old-done") is not None
        assert await store.purge(archived_before=later) == 2
        assert await store.get("old-done") is None
        assert await store.events("old-done") == []
        assert await store.get("old-failed") is not None

    async def test_delete_removes_saga_and_history(self, store: SagaStore) -> None:
        record = new_saga("gone")
        await store.create(record, started(record))
        assert await store.delete("gone") is True
        assert await store.get("gone") is None and await store.events("gone") == []
        assert await store.delete("gone") is False
