"""The application of the relay fault tests: sagas whose steps publish three messages."""

from __future__ import annotations

import os

import sagakit as sk

order = sk.Saga("order")


@order.step
async def reserve(ctx: sk.StepContext) -> None:
    ctx.publish("shop.reserved", {"saga": ctx.saga_id, "n": 0})
    ctx.publish("shop.reserved", {"saga": ctx.saga_id, "n": 1})


@order.step
async def charge(ctx: sk.StepContext) -> None:
    ctx.publish("shop.charged", {"saga": ctx.saga_id, "n": 2})


_url = os.environ.get("RELAY_BROKER", "amqp://guest:guest@127.0.0.1:5672/")
_name = os.environ.get("RELAY_EXCHANGE", "sagakit")
runtime = sk.Runtime(
    os.environ.get("RELAY_DB", "sqlite:///relay.db"),
    sagas=[order],
    broker=(
        sk.NatsJetStream(_url, stream=_name)
        if _url.startswith("nats://")
        else sk.RabbitMQ(_url, exchange=_name)
    ),
)
