"""The store contract's claims and leases: who runs which saga, fenced by versions."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from ..errors import ConcurrencyError
from ..status import SagaStatus
from ..store.base import SagaStore
from ..store.records import Checkpoint, utcnow
from .contract_records import advanced, new_saga, started


class ClaimContract:
    """Claiming runnable sagas under leases, and renewing them."""

    async def test_claim_leases_runnable_sagas_and_counts_what_a_claim_costs(
        self, store: SagaStore
    ) -> None:
        pending = new_saga("p", status=SagaStatus.PENDING, version=1)
        await store.create(pending, started(pending))
        now = utcnow()
        claimed = await store.claim(
            "w1", now=now, lease_until=now + timedelta(seconds=30), limit=10
        )
        assert [r.id for r in claimed] == ["p"]
        got = await store.get("p")
        assert got is not None
        assert (got.lease_owner, got.version, got.attempt) == ("w1", 2, 1)
        # a live lease keeps it from every other claimer
        again = await store.claim("w2", now=now, lease_until=now + timedelta(seconds=30), limit=10)
        assert again == []
        # once the lease has expired anyone may take it: its holder died before writing
        # anything (even in the first step), which counts a crash, not another attempt
        later = now + timedelta(seconds=31)
        taken = await store.claim(
            "w2", now=later, lease_until=later + timedelta(seconds=30), limit=10
        )
        got_taken = [(r.id, r.lease_owner, r.attempt, r.crashes, r.version) for r in taken]
        assert got_taken == [("p", "w2", 1, 1, 3)]

    async def test_claim_skips_terminal_paused_and_not_yet_due(self, store: SagaStore) -> None:
        now = utcnow()
        rows = [
            new_saga("done", status=SagaStatus.COMPLETED),
            new_saga("failed", status=SagaStatus.FAILED),
            new_saga("paused", status=SagaStatus.PAUSED),
            new_saga("later", status=SagaStatus.RUNNING, next_attempt_at=now + timedelta(hours=1)),
            new_saga("due", status=SagaStatus.RUNNING, next_attempt_at=now - timedelta(seconds=1)),
            new_saga(
                "timed-out",
                status=SagaStatus.RUNNING,
                next_attempt_at=now + timedelta(hours=1),
                timeout_at=now - timedelta(seconds=1),
            ),
            new_saga("undoing", status=SagaStatus.COMPENSATING),
        ]
        for r in rows:
            await store.create(r, started(r))
        claimed = await store.claim("w", now=now, lease_until=now + timedelta(seconds=9), limit=50)
        assert {r.id for r in claimed} == {"due", "timed-out", "undoing"}

    async def test_claim_respects_limit_types_and_ids(self, store: SagaStore) -> None:
        for i in range(5):
            r = new_saga(f"o{i}", status=SagaStatus.PENDING, saga_type="order")
            await store.create(r, started(r))
        other = new_saga("r0", status=SagaStatus.PENDING, saga_type="refund")
        await store.create(other, started(other))
        now = utcnow()
        until = now + timedelta(seconds=30)
        two = await store.claim("w", now=now, lease_until=until, limit=2, saga_types=["order"])
        assert len(two) == 2 and all(r.saga_type == "order" for r in two)
        one = await store.claim("w", now=now, lease_until=until, limit=5, saga_ids=["r0"])
        assert [r.id for r in one] == ["r0"]
        rest = await store.claim("w", now=now, lease_until=until, limit=50)
        assert len(rest) == 3

    async def test_claim_never_returns_the_sagas_the_claimer_runs(self, store: SagaStore) -> None:
        # Given two sagas whose leases ran out while their worker still runs one of them
        now = utcnow()
        for saga_id in ("mine", "abandoned"):
            r = new_saga(
                saga_id,
                status=SagaStatus.RUNNING,
                lease_owner="w",
                lease_expires_at=now - timedelta(seconds=1),
            )
            await store.create(r, started(r))
        # When that worker claims, naming what it runs
        got = await store.claim(
            "w", now=now, lease_until=now + timedelta(seconds=30), limit=10, exclude_ids=["mine"]
        )
        # I expect only the abandoned one
        assert [r.id for r in got] == ["abandoned"]

    async def test_claim_without_take_over_leaves_expired_leases_alone(
        self, store: SagaStore
    ) -> None:
        now = utcnow()
        held = new_saga(
            "held",
            status=SagaStatus.RUNNING,
            lease_owner="w",
            lease_expires_at=now - timedelta(seconds=1),
        )
        free = new_saga("free", status=SagaStatus.PENDING)
        for r in (held, free):
            await store.create(r, started(r))
        until = now + timedelta(seconds=30)
        got = await store.claim("v", now=now, lease_until=until, limit=10, take_over=False)
        assert [r.id for r in got] == ["free"]

    async def test_concurrent_claimers_never_share_a_saga(self, store: SagaStore) -> None:
        for i in range(40):
            r = new_saga(f"c{i}", status=SagaStatus.PENDING)
            await store.create(r, started(r))
        now = utcnow()
        until = now + timedelta(seconds=30)
        batches = await asyncio.gather(
            *(store.claim(f"w{i}", now=now, lease_until=until, limit=7) for i in range(8))
        )
        ids = [r.id for batch in batches for r in batch]
        assert len(ids) == len(set(ids)) == 40

    async def test_claimed_version_fences_the_previous_holder(self, store: SagaStore) -> None:
        # Given a saga held by w1 whose lease expired and was claimed by w2
        now = utcnow()
        held = new_saga(
            "f",
            status=SagaStatus.RUNNING,
            lease_owner="w1",
            lease_expires_at=now - timedelta(seconds=1),
        )
        await store.create(held, started(held))
        [taken] = await store.claim("w2", now=now, lease_until=now + timedelta(seconds=30), limit=1)
        # When w1 wakes up and checkpoints from the version it had
        late, expected, events = advanced(held, step_index=5)
        # I expect its write rejected and w2's lease intact
        with pytest.raises(ConcurrencyError):
            await store.commit(Checkpoint(late, expected, events))
        got = await store.get("f")
        assert got is not None and got.lease_owner == "w2" and got.step_index == 0
        assert taken.version == got.version

    async def test_renew_extends_own_leases_and_reports_lost_ones(self, store: SagaStore) -> None:
        now = utcnow()
        for saga_id in ("mine", "theirs"):
            r = new_saga(saga_id, status=SagaStatus.PENDING)
            await store.create(r, started(r))
        await store.claim(
            "me", now=now, lease_until=now + timedelta(seconds=5), limit=1, saga_ids=["mine"]
        )
        await store.claim(
            "other", now=now, lease_until=now + timedelta(seconds=5), limit=1, saga_ids=["theirs"]
        )
        until = now + timedelta(seconds=60)
        lost = await store.renew("me", ["mine", "theirs"], until)
        assert lost == {"theirs"}
        got = await store.get("mine")
        assert got is not None and got.lease_expires_at is not None
        assert abs((got.lease_expires_at - until).total_seconds()) < 0.001
