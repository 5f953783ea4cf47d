"""A known run of real sagas on SQLite, whose every metric, span and log line the tests know."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import sagakit as sk
from sagakit.hooks import SagaHooks

FAST = sk.Retry(max_attempts=3, initial=0.001, backoff=1.0, jitter=0)

#: Always fail (more attempts than any retry policy allows).
ALWAYS = 99


class PaymentDeclined(Exception):
    """What the charge step raises when told to fail."""


def order_saga() -> sk.Saga:
    """reserve -> charge -> ship, each undoable; the context says which attempts fail.

    ``{"fail": {"charge": 1}}`` fails charge's first attempt; ``{"undo_fails": ["reserve"]}``
    makes reserve's compensation always fail.
    """
    saga = sk.Saga("order", retry=FAST)
    errors: dict[str, type[Exception]] = {"charge": PaymentDeclined}

    def act(name: str) -> Any:
        async def action(ctx: sk.StepContext) -> dict[str, Any]:
            if ctx.attempt <= ctx.get("fail", {}).get(name, 0):
                raise errors.get(name, RuntimeError)(f"{name} broke")
            return {name: True}

        async def undo(ctx: sk.StepContext) -> None:
            if name in ctx.get("undo_fails", []):
                raise RuntimeError(f"undo {name} broke")

        return sk.Step(name, action, compensate=undo)

    for name in ("reserve", "charge", "ship"):
        saga.add(act(name))
    return saga


def refund_saga() -> sk.Saga:
    """One step that always completes."""

    async def refund(ctx: sk.StepContext) -> dict[str, Any]:
        return {"refunded": True}

    return sk.Saga("refund", steps=[sk.Step("refund", refund)], retry=FAST)


#: (saga id, type, context, final status): 3 completed orders (one after a retry), one
#: compensated after its retries, one FAILED, and a refund run by a background worker.
RUNS: list[tuple[str, str, dict[str, Any], sk.SagaStatus]] = [
    ("a1", "order", {}, sk.SagaStatus.COMPLETED),
    ("a2", "order", {}, sk.SagaStatus.COMPLETED),
    ("a3", "order", {"fail": {"charge": 1}}, sk.SagaStatus.COMPLETED),
    ("a4", "order", {"fail": {"ship": ALWAYS}}, sk.SagaStatus.COMPENSATED),
    ("a5", "order", {"fail": {"ship": ALWAYS}, "undo_fails": ["reserve"]}, sk.SagaStatus.FAILED),
    ("r1", "refund", {}, sk.SagaStatus.COMPLETED),
]


@dataclass
class KnownRun:
    """Where the known run happened and how each saga ended."""

    url: str
    results: dict[str, sk.SagaRecord]


async def run_known(url: str, *hooks: SagaHooks) -> KnownRun:
    """Run ``RUNS``: orders inline with ``rt.run``, the refund through ``rt.start`` and a worker."""
    results: dict[str, sk.SagaRecord] = {}
    async with sk.Runtime(
        url, sagas=[order_saga(), refund_saga()], hooks=hooks, workers=1, poll_interval=0.05
    ) as rt:
        for saga_id, saga_type, context, _ in RUNS:
            if saga_type == "order":
                results[saga_id] = await rt.run(saga_type, context, saga_id=saga_id)
            else:
                await rt.start(saga_type, context, saga_id=saga_id)
                results[saga_id] = await rt.wait(saga_id, timeout=30)
    for saga_id, _, _, status in RUNS:
        assert results[saga_id].status == status, saga_id
    return KnownRun(url, results)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh SQLite database for the test."""
    return f"sqlite:///{tmp_path}/s.db"
