"""An order as a persistent state machine: submitted -> paid -> shipped, with a payment timeout.

Run it with ``python examples/order_state_machine.py`` (embedded SQLite, no server) or
``--db postgresql://user@host/db``. Three orders arrive as events:

- ``o-1`` is submitted, paid (which starts the orchestrated ``shipping`` saga in the same
  transaction) and shipped;
- ``o-2``'s payment arrives *before* the order itself: it is held, then applied as soon as
  the order is submitted;
- ``o-3`` is never paid: its durable ``PaymentTimeout`` schedule fires and finalizes it.

Each order's state and event history are printed as read back from the database.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import sagakit as sk

order = sk.StateMachine("order", correlate_by="order_id")
submitted, paid, shipped, expired = order.states("Submitted", "Paid", "Shipped", "Expired")
# a payment for an order we have not seen yet is kept until the order arrives
order.event("PaymentCaptured", missing="hold")


@order.initially("OrderSubmitted")
def on_submitted(instance: sk.Instance, event: dict[str, Any]) -> sk.State:
    instance.data["total"] = event["total"]
    instance.publish("payments.requested", {"order_id": event["order_id"]})
    instance.schedule("PaymentTimeout", after=event.get("pay_within", 900))
    return submitted


@order.during(submitted, "PaymentCaptured")
def on_paid(instance: sk.Instance, event: dict[str, Any]) -> sk.State:
    instance.unschedule("PaymentTimeout")
    instance.data["paid"] = event["amount"]
    instance.start("shipping", {"order_id": event["order_id"]})
    return paid


@order.during(submitted, "PaymentTimeout")
def on_timeout(instance: sk.Instance, event: dict[str, Any]) -> sk.State:
    instance.publish("orders.expired", {"order_id": instance.key})
    instance.finalize()
    return expired


@order.during(paid, "OrderShipped")
def on_shipped(instance: sk.Instance, event: dict[str, Any]) -> sk.State:
    instance.data["tracking"] = event["tracking"]
    instance.finalize()
    return shipped


shipping = sk.Saga("shipping")


@shipping.step
async def book_courier(ctx: sk.StepContext) -> dict[str, Any]:
    return {"tracking": f"TRK-{ctx['order_id']}"}


@shipping.step
async def announce(ctx: sk.StepContext) -> None:
    ctx.publish("orders.shipping", {"order_id": ctx["order_id"], "tracking": ctx["tracking"]})


async def show(rt: sk.Runtime, instance_id: str) -> None:
    record = await rt.get(instance_id)
    print(f"{instance_id}: {record.status.value} in {record.current_step} {record.data}")
    for event in await rt.history(instance_id):
        moved = ""
        if event.output and "to" in event.output:
            moved = f" {event.output['from'] or '(new)'} -> {event.output['to']}"
        print(f"  {event.type} {event.step}{moved}")


async def main(url: str) -> None:
    async with sk.Runtime(url, sagas=[order, shipping], poll_interval=0.1) as rt:
        await rt.send("OrderSubmitted", {"order_id": "o-1", "total": 10}, message_id="o-1-sub")
        await rt.send("PaymentCaptured", {"order_id": "o-1", "amount": 10}, message_id="o-1-pay")
        # the shipping saga was started with the payment; wait for it, then ship
        shipment = await rt.wait("order:o-1:shipping:o-1-pay", timeout=30)
        await rt.send("OrderShipped", {"order_id": "o-1", "tracking": shipment.data["tracking"]})

        early = await rt.send("PaymentCaptured", {"order_id": "o-2", "amount": 5})
        print(f"payment for o-2 before its order: {early.outcome.value}")
        await rt.send("OrderSubmitted", {"order_id": "o-2", "total": 5})

        await rt.send("OrderSubmitted", {"order_id": "o-3", "total": 7, "pay_within": 0.5})
        await rt.wait("order:o-3", timeout=30)  # a worker fires the timeout when it is due

        for instance_id in ("order:o-1", "order:o-2", "order:o-3"):
            await show(rt, instance_id)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite:///orders.db", help="store URL")
    asyncio.run(main(parser.parse_args().db))
