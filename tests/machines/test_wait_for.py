"""Orchestrated sagas that wait for an event: parked durably, woken by rt.send, timed out."""

from __future__ import annotations

from typing import Any

import sagakit as sk
from sagakit.history import EventType

from .test_state_machines import eventually

S = sk.SagaStatus
Out = sk.Outcome


def purchase_saga(timeout: float = 60, on_timeout: Any = None) -> sk.Saga:
    purchase = sk.Saga("purchase")

    @purchase.step
    def create_order(ctx: sk.StepContext) -> dict[str, Any]:
        return {"order_id": f"ord-{ctx['n']}"}

    @create_order.compensation
    def cancel_order(ctx: sk.StepContext) -> None:
        return None

    purchase.wait_for("PaymentConfirmed", match="order_id", timeout=timeout, on_timeout=on_timeout)

    @purchase.step
    def ship(ctx: sk.StepContext) -> dict[str, Any]:
        return {"shipped_for": ctx.get("amount")}

    return purchase


async def _status(rt: sk.Runtime, saga_id: str, status: sk.SagaStatus) -> bool:
    return (await rt.get(saga_id)).status == status


async def test_a_saga_parks_at_its_wait_and_an_event_resumes_it(store_url: str) -> None:
    async with sk.Runtime(store_url, sagas=[purchase_saga()], poll_interval=0.05) as rt:
        await rt.start("purchase", {"n": 1}, saga_id="p1")
        await eventually(lambda: _status(rt, "p1", S.WAITING))
        parked = await rt.get("p1")
        # parked: no lease, and its worker slot is given back
        assert parked.lease_owner is None and rt.worker is not None
        worker = rt.worker

        async def idle() -> bool:
            return worker.running == 0

        await eventually(idle)
        assert parked.current_step == "wait_for_PaymentConfirmed"
        other = await rt.send("PaymentConfirmed", {"order_id": "ord-999", "amount": 1})
        assert other.outcome is Out.HELD  # another order's payment does not wake it
        result = await rt.send("PaymentConfirmed", {"order_id": "ord-1", "amount": 25})
        assert result.outcome is Out.APPLIED and result.deliveries[0].instance_id == "p1"
        final = await rt.wait("p1", timeout=20)
        assert final.status == S.COMPLETED
        assert final.data["amount"] == 25 and final.data["shipped_for"] == 25
        types = [e.type for e in await rt.history("p1")]
        assert EventType.SAGA_WAITING in types


async def test_an_event_that_comes_before_the_wait_is_kept_for_it(store_url: str) -> None:
    async with sk.Runtime(store_url, sagas=[purchase_saga()], poll_interval=0.05) as rt:
        early = await rt.send("PaymentConfirmed", {"order_id": "ord-2", "amount": 7})
        assert early.outcome is Out.HELD
        await rt.start("purchase", {"n": 2}, saga_id="p2")
        final = await rt.wait("p2", timeout=20)
        assert final.status == S.COMPLETED and final.data["amount"] == 7


async def test_a_wait_that_times_out_compensates_or_runs_on_timeout(store_url: str) -> None:
    async with sk.Runtime(store_url, sagas=[purchase_saga(timeout=0.3)], poll_interval=0.05) as rt:
        await rt.start("purchase", {"n": 3}, saga_id="p3")
        final = await rt.wait("p3", timeout=20)
        assert (final.status, final.reason) == (S.COMPENSATED, sk.Reason.TIMEOUT)
    fallback = purchase_saga(timeout=0.3, on_timeout=lambda ctx: {"amount": 0})
    fallback.name = "purchase_fallback"
    async with sk.Runtime(store_url, sagas=[fallback], poll_interval=0.05) as rt:
        await rt.start("purchase_fallback", {"n": 4}, saga_id="p4")
        final = await rt.wait("p4", timeout=20)
        assert final.status == S.COMPLETED and final.data["shipped_for"] == 0


async def test_a_parked_saga_survives_a_restart_and_can_be_addressed_by_id(
    store_url: str,
) -> None:
    approval = sk.Saga("approval")

    @approval.step
    def ask(ctx: sk.StepContext) -> None:
        return None

    approval.wait_for("Approved")

    @approval.step
    def act(ctx: sk.StepContext) -> dict[str, Any]:
        return {"acted_by": ctx["by"]}

    store = sk.MemoryStore() if store_url == "memory://" else None
    where: dict[str, Any] = {"store": store} if store else {"url": store_url}
    async with sk.Runtime(**where, sagas=[approval], poll_interval=0.05) as rt:
        await rt.start("approval", {}, saga_id="a1")
        await eventually(lambda: _status(rt, "a1", S.WAITING))
    # a new process: the saga is still parked, and an event sent to it by id resumes it
    async with sk.Runtime(**where, sagas=[approval], poll_interval=0.05) as rt:
        assert (await rt.get("a1")).status == S.WAITING
        result = await rt.send("Approved", {"by": "dana"}, saga_id="a1")
        assert result.outcome is Out.APPLIED
        final = await rt.wait("a1", timeout=20)
        assert final.status == S.COMPLETED and final.data["acted_by"] == "dana"


async def test_an_operator_can_cancel_a_parked_saga(store_url: str) -> None:
    async with sk.Runtime(store_url, sagas=[purchase_saga()], poll_interval=0.05) as rt:
        await rt.start("purchase", {"n": 5}, saga_id="p5")
        await eventually(lambda: _status(rt, "p5", S.WAITING))
        await rt.cancel("p5", actor="ops", reason="customer gave up")
        final = await rt.wait("p5", timeout=20)
        assert (final.status, final.reason) == (S.COMPENSATED, sk.Reason.CANCELLED)
        # the payment that comes later finds no saga listening: it is held, not applied
        late = await rt.send("PaymentConfirmed", {"order_id": "ord-5", "amount": 1})
        assert late.outcome is Out.HELD
        assert "amount" not in (await rt.get("p5")).data
