"""The test bed: virtual time fires every kind of timer, and nothing fires early."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from examples.order_state_machine import order, shipping

import sagakit as sk
from sagakit import clock
from sagakit.store import utcnow as store_utcnow
from sagakit.testing import TestBed

START = datetime(2030, 1, 1, 3, 0, tzinfo=UTC)


def flaky_saga(failures: int) -> tuple[sk.Saga, list[datetime]]:
    """A one-step saga failing ``failures`` times, with a 10-minute first back-off."""
    saga = sk.Saga("flaky")
    calls: list[datetime] = []

    @saga.step(retry=sk.Retry(max_attempts=5, initial=600, backoff=2, max_delay=3600, jitter=0))
    async def charge(ctx: sk.StepContext) -> dict[str, Any]:
        calls.append(clock.utcnow())
        if len(calls) <= failures:
            raise ConnectionError("payment provider down")
        return {"charged": True}

    return saga, calls


async def test_retry_back_off_waits_for_the_clock_not_for_sleep() -> None:
    saga, calls = flaky_saga(failures=2)
    async with TestBed(saga, start=START) as bed:
        first = await bed.start("flaky", {})
        assert first.status == sk.SagaStatus.RUNNING and len(calls) == 1

        await bed.advance(minutes=9)
        assert len(calls) == 1, "retried before its 10-minute back-off"
        await bed.advance(minutes=1)
        assert len(calls) == 2
        await bed.advance(minutes=19)
        assert len(calls) == 2, "the second back-off is 20 minutes"
        await bed.advance(minutes=1)

        assert (await bed.get(first.id)).status == sk.SagaStatus.COMPLETED
        assert calls == [START, START + timedelta(minutes=10), START + timedelta(minutes=30)]


async def test_a_saga_deadline_compensates_when_the_clock_passes_it() -> None:
    saga = sk.Saga("booking", timeout=3600)
    undone: list[str] = []

    @saga.step
    async def hold_seat(ctx: sk.StepContext) -> None:
        return None

    @hold_seat.compensation
    async def release_seat(ctx: sk.StepContext) -> None:
        undone.append("seat")

    @saga.step(retry=sk.Retry(max_attempts=100, initial=900, backoff=1, jitter=0))
    async def confirm(ctx: sk.StepContext) -> None:
        raise ConnectionError("airline down")

    async with TestBed(saga, start=START) as bed:
        booking = await bed.start("booking", {})
        await bed.advance(minutes=45)
        assert (await bed.get(booking.id)).status == sk.SagaStatus.RUNNING and not undone
        await bed.advance(minutes=30)  # past the hour: the next attempt finds it late
        final = await bed.get(booking.id)
        assert final.status == sk.SagaStatus.COMPENSATED and undone == ["seat"]
        assert final.reason == sk.Reason.TIMEOUT


async def test_a_wait_for_timeout_fires_on_advance() -> None:
    saga = sk.Saga("signup")
    saga.wait_for("EmailConfirmed", match="email", timeout=timedelta(days=2))

    @saga.step
    async def welcome(ctx: sk.StepContext) -> None:
        ctx.publish("users.welcomed", {"email": ctx["email"]})

    async with TestBed(saga, start=START) as bed:
        waiting = await bed.start("signup", {"email": "a@example.com"})
        assert waiting.status == sk.SagaStatus.WAITING
        await bed.advance(days=1, hours=23)
        assert (await bed.get(waiting.id)).status == sk.SagaStatus.WAITING
        await bed.advance(hours=1)
        assert (await bed.get(waiting.id)).status == sk.SagaStatus.COMPENSATED
        assert bed.topics() == []

        answered = await bed.start("signup", {"email": "b@example.com"})
        await bed.send("EmailConfirmed", {"email": "b@example.com"})
        assert (await bed.get(answered.id)).status == sk.SagaStatus.COMPLETED
        assert bed.topics(answered.id) == ["users.welcomed"]


async def test_a_state_machine_schedule_fires_on_advance_and_publishes() -> None:
    async with TestBed(order, shipping, start=START) as bed:
        await bed.send("OrderSubmitted", {"order_id": "o-1", "total": 10})
        await bed.advance(minutes=14, seconds=59)
        assert await bed.state("order:o-1") == "Submitted"
        await bed.advance(seconds=1)
        assert await bed.state("order:o-1") == "Expired"
        assert bed.topics("order:o-1") == ["payments.requested", "orders.expired"]
        assert (await bed.get("order:o-1")).status == sk.SagaStatus.COMPLETED


async def test_an_event_runs_what_it_starts_before_send_returns() -> None:
    async with TestBed(order, shipping, start=START) as bed:
        await bed.send("OrderSubmitted", {"order_id": "o-2", "total": 5})
        await bed.send("PaymentCaptured", {"order_id": "o-2", "amount": 5}, message_id="pay-2")
        assert await bed.state("order:o-2") == "Paid"
        shipment = await bed.get("order:o-2:shipping:pay-2")
        assert shipment.status == sk.SagaStatus.COMPLETED
        assert bed.topics() == ["payments.requested", "orders.shipping"]
        # the payment timeout was cancelled with the payment: nothing fires later
        await bed.advance(days=1)
        assert await bed.state("order:o-2") == "Paid"


async def test_the_real_clock_comes_back_after_the_bed_closes() -> None:
    async with TestBed(start=START) as bed:
        assert clock.utcnow() == START
        assert store_utcnow() == START
        await bed.advance(hours=1)
        assert clock.utcnow() == START + timedelta(hours=1)
    assert abs(clock.utcnow() - datetime.now(UTC)) < timedelta(minutes=1)
    assert not clock.current().virtual


async def test_the_clock_refuses_to_go_back_or_to_start_naive() -> None:
    virtual = clock.VirtualClock(START)
    with pytest.raises(ValueError, match="only moves forward"):
        await virtual.advance(-1)
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.VirtualClock(datetime(2030, 1, 1))
    assert await virtual.advance(timedelta(seconds=5), minutes=1) == START + timedelta(seconds=65)


async def test_a_background_runtime_under_a_virtual_clock_wakes_on_advance() -> None:
    saga, calls = flaky_saga(failures=1)
    virtual = clock.VirtualClock(START)
    with clock.use_clock(virtual):
        async with sk.Runtime("memory://", sagas=[saga], workers=2, poll_interval=3600) as rt:
            saga_id = await rt.start("flaky", {})
            while not calls:  # the first attempt, run by the background worker
                await asyncio.sleep(0.01)
            await virtual.advance(minutes=10)
            final = await rt.wait(saga_id, timeout=30)
    assert final.status == sk.SagaStatus.COMPLETED
    assert calls == [START, START + timedelta(minutes=10)]
