"""An application module as users write it: a configured Runtime, for ``--app`` tests."""

from __future__ import annotations

import os
from typing import Any

import sagakit as sk

finished: list[str] = []


class RecordFinished(sk.SagaHooks):
    """The application's own hook: notes every saga that finished."""

    def saga_finished(self, saga: sk.SagaRecord, seconds: float) -> None:
        finished.append(saga.id)


shop = sk.Saga("shop")


@shop.step
async def pack(ctx: sk.StepContext) -> dict[str, Any]:
    return {"packed": True}


runtime = sk.Runtime(
    os.environ.get("SHOPAPP_DB", "memory://"),
    sagas=[shop],
    hooks=[RecordFinished()],
    prefix="shop_",
    lease_seconds=7.0,
    workers=0,
)
