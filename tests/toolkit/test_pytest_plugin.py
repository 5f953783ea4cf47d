"""The pytest fixtures sagakit installs, used as a user would on the purchase example."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from examples import purchase_plan

import sagakit as sk
from sagakit import clock
from sagakit.testing.pytest_plugin import OpenTestBed


async def test_a_declined_card_is_retried_on_the_clock_then_rolled_back(
    sagakit_testbed: OpenTestBed,
) -> None:
    bed = await sagakit_testbed(purchase_plan.purchase)
    purchase_plan.PAYMENTS.clear()

    started = await bed.start("purchase_plan", {"user_id": 1, "plan_id": 7, "card": "declined"})
    assert started.status == sk.SagaStatus.RUNNING  # the payment waits for its back-off
    assert bed.topics(started.id) == ["orders.created"]

    await bed.advance(seconds=1)  # 0.05 s, then 0.1 s: both retries are due by now
    final = await bed.get(started.id)

    assert final.status == sk.SagaStatus.COMPENSATED
    assert purchase_plan.DEVICES[final.data["order_id"]] == "released"
    assert not purchase_plan.PAYMENTS
    attempts = [e for e in await bed.history(started.id) if e.type == "step_failed"]
    assert len(attempts) == 3


async def test_a_good_card_completes_without_touching_the_clock(
    sagakit_testbed: OpenTestBed,
) -> None:
    bed = await sagakit_testbed(purchase_plan.purchase)
    done = await bed.start("purchase_plan", {"user_id": 2, "plan_id": 12})
    assert done.status == sk.SagaStatus.COMPLETED
    assert bed.topics(done.id) == ["orders.created", "payments.captured", "orders.activated"]
    assert len({m.message_id for m in bed.published}) == 3
    assert {m.saga_type for m in bed.published} == {"purchase_plan"}


def test_the_clock_fixture_is_the_clock_sagakit_reads(sagakit_clock: clock.VirtualClock) -> None:
    start = sagakit_clock.now()
    assert clock.current() is sagakit_clock
    assert clock.utcnow() == start  # standing still until advanced
    asyncio.run(sagakit_clock.advance(minutes=5))
    assert clock.utcnow() == start + timedelta(minutes=5)
