"""Saga definitions the web tests start, break and repair."""

from __future__ import annotations

import sagakit as sk

#: Flip to False to "fix the warehouse": the release compensation then succeeds.
BROKEN: dict[str, bool] = {"warehouse": True}

FAST = sk.Retry(max_attempts=2, initial=0.01, backoff=1.0, jitter=0.0)


def order_saga() -> sk.Saga:
    """reserve (undo: release, which fails while the warehouse is broken) then charge."""
    saga = sk.Saga("order", retry=sk.Retry(max_attempts=1))

    @saga.step(compensation_retry=FAST)
    async def reserve(ctx: sk.StepContext) -> dict[str, object]:
        ctx.publish("stock.reserved", {"n": ctx.get("n"), "note": "<i>kept</i>"})
        return {"reserved": True}

    @reserve.compensation
    async def release(ctx: sk.StepContext) -> None:
        if ctx.get("undo_fails") and BROKEN["warehouse"]:
            raise RuntimeError("warehouse offline <b>bold</b>")

    @saga.step
    async def charge(ctx: sk.StepContext) -> dict[str, object]:
        if ctx.get("declined"):
            raise RuntimeError("card declined")
        return {"charged": True}

    return saga


def sagas() -> list[sk.Saga]:
    """Every saga type the test servers register."""
    return [order_saga()]
