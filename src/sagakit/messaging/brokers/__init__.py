"""Broker adapters, and the one place a broker setting (URL or object) becomes a broker."""

from __future__ import annotations

from ...errors import ConfigurationError
from ..broker import Broker
from .memory import MemoryBroker


def broker_from(setting: str | Broker) -> Broker:
    """``"amqp://…"`` (RabbitMQ), ``"nats://…"`` (NATS JetStream), ``"memory://"`` or a ``Broker``."""
    if isinstance(setting, Broker):
        return setting
    if not isinstance(setting, str) or "://" not in setting:
        raise ConfigurationError(
            f"broker must be a URL such as 'amqp://guest:guest@127.0.0.1:5672/' or "
            f"'memory://', or a Broker; got {setting!r}"
        )
    scheme = setting.partition("://")[0].lower()
    if scheme == "memory":
        return MemoryBroker()
    if scheme in ("amqp", "amqps"):
        from .rabbitmq import RabbitMQ

        return RabbitMQ(setting)
    if scheme in ("nats", "tls"):
        from .nats import NatsJetStream

        return NatsJetStream(setting)
    raise ConfigurationError(
        f"broker URL scheme {scheme!r} is not supported; use amqp:// (RabbitMQ), "
        "nats:// (NATS JetStream) or memory://"
    )


__all__ = ["MemoryBroker", "broker_from"]
