"""The purchase-plan saga: validate a plan, create an order, allocate a device, charge, activate.

Run it with ``make demo`` (or ``python examples/purchase_plan.py``). It runs one purchase
that succeeds and one whose payment keeps failing, so its earlier steps are compensated,
and prints each saga's status and step timeline as read back from the database.

The steps publish what they did (``orders.created``, ``payments.captured``, …); a
consumer prints each message as it arrives. ``--broker memory://`` (the default) keeps
the messages inside this process; ``--broker amqp://guest:guest@127.0.0.1:5672/`` sends
them through RabbitMQ.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import sagakit as sk

purchase = sk.Saga("purchase_plan", timeout=300)

#: Stand-ins for the services a real purchase calls; each remembers what it was asked.
ORDERS: dict[str, str] = {}
DEVICES: dict[str, str] = {}
PAYMENTS: dict[str, int] = {}


class PaymentDeclined(Exception):
    """The payment provider said no."""


@purchase.step(timeout=10, retry=sk.Retry(max_attempts=1))
async def validate_plan(ctx: sk.StepContext) -> dict[str, Any]:
    if ctx["plan_id"] not in (1, 7, 12):
        raise ValueError(f"unknown plan {ctx['plan_id']}")
    return {"price_cents": 1999}


@purchase.step(timeout=10)
async def create_order(ctx: sk.StepContext) -> dict[str, Any]:
    order_id = f"ord-{ctx.saga_id}"
    ORDERS[ctx.idempotency_key] = "created"  # the key makes a re-run a no-op
    ctx.publish("orders.created", {"order_id": order_id, "user_id": ctx["user_id"]})
    return {"order_id": order_id}


@create_order.compensation
async def cancel_order(ctx: sk.StepContext) -> None:
    ORDERS[f"{ctx.saga_id}:create_order"] = "cancelled"
    ctx.publish("orders.cancelled", {"order_id": ctx["order_id"]})


@purchase.step(timeout=10)
async def allocate_device(ctx: sk.StepContext) -> dict[str, Any]:
    DEVICES[ctx["order_id"]] = "allocated"
    return {"device_id": f"dev-{ctx['user_id']}"}


@allocate_device.compensation
async def release_device(ctx: sk.StepContext) -> None:
    DEVICES[ctx["order_id"]] = "released"


@purchase.step(timeout=10, retry=sk.Retry(max_attempts=3, initial=0.05, backoff=2.0))
async def process_payment(ctx: sk.StepContext) -> dict[str, Any]:
    if ctx.get("card") == "declined":
        raise PaymentDeclined(f"card declined for order {ctx['order_id']}")
    PAYMENTS[ctx["order_id"]] = ctx["price_cents"]
    ctx.publish("payments.captured", {"order_id": ctx["order_id"], "cents": ctx["price_cents"]})
    return {"payment_id": f"pay-{ctx['order_id']}"}


@process_payment.compensation
async def refund_payment(ctx: sk.StepContext) -> None:
    PAYMENTS.pop(ctx["order_id"], None)


@purchase.step(timeout=10)
async def activate_order(ctx: sk.StepContext) -> dict[str, Any]:
    ctx.publish("orders.activated", {"order_id": ctx["order_id"]})
    return {"active": True}


@activate_order.compensation
async def deactivate_order(ctx: sk.StepContext) -> None:
    pass


def timeline(events: list[sk.SagaEvent]) -> str:
    """Render a saga's history events as an indented timeline."""
    t0 = events[0].at
    lines = []
    for e in events:
        offset = (e.at - t0).total_seconds() * 1000
        what = e.type + (f" {e.step}" if e.step else "")
        if e.attempt:
            what += f" (attempt {e.attempt})"
        if e.duration_ms is not None:
            what += f" {e.duration_ms:.1f} ms"
        if e.error:
            what += f" — {e.error['message']}"
        lines.append(f"    +{offset:7.1f} ms  {what}")
    return "\n".join(lines)


async def main(url: str, broker: str) -> None:
    """Run a good and a declined purchase and print what the database holds."""
    received: list[sk.Envelope] = []

    async def print_message(message: sk.Envelope) -> None:
        received.append(message)
        print(f"  received {message.topic} {message.payload} ({message.correlation_id})")

    async with sk.Runtime(url, sagas=[purchase], broker=broker) as rt:
        await rt.consume(["orders.*", "payments.*"], print_message, queue="purchase-plan-demo")
        ok = await rt.run("purchase_plan", {"user_id": 1, "plan_id": 7}, saga_id="order-42")
        bad = await rt.run(
            "purchase_plan",
            {"user_id": 2, "plan_id": 7, "card": "declined"},
            saga_id="order-43",
        )
        for result in (ok, bad):
            saga = await rt.get(result.id)  # read back from the database
            reason = f" ({saga.reason.value})" if saga.reason else ""
            print(f"saga {saga.id}: {saga.status.value}{reason}")
            if saga.error_message:
                print(f"  error: {saga.error_message}")
            print(f"  context: {saga.context}")
            print("  timeline:")
            print(timeline(await rt.history(saga.id)))
        # the relay publishes in the background: wait until it sent everything and the
        # consumer printed it
        assert rt.relay is not None
        while (await rt.store.outbox_backlog()).pending or len(
            received
        ) < rt.relay.counters.published:
            await asyncio.sleep(0.01)
    print(f"messages received: {len(received)} (published by the relay through {broker})")
    print(f"store: {url}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite:///sagas.db", help="store URL")
    parser.add_argument("--broker", default="memory://", help="broker URL (amqp://… or memory://)")
    args = parser.parse_args()
    asyncio.run(main(args.db, args.broker))
