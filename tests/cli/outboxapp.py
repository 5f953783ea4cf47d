"""Sagas that publish, for the ``sagakit relay`` and ``sagakit outbox`` tests."""

from __future__ import annotations

import sagakit as sk

announce = sk.Saga("announce")


@announce.step
async def tell(ctx: sk.StepContext) -> None:
    ctx.publish("orders.created", {"saga": ctx.saga_id})
    ctx.publish("orders.priced", {"saga": ctx.saga_id})


sagas = [announce]
