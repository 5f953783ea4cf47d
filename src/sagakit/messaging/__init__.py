"""Messaging: the outbox relay, the broker port and its adapters, consumers with an inbox."""

from .broker import Broker, BrokerUnavailable, Handler, PublishRefused
from .brokers import MemoryBroker, broker_from
from .brokers.nats import NatsJetStream
from .brokers.rabbitmq import RabbitMQ
from .envelope import Envelope
from .relay import Relay, RelayCounters

__all__ = [
    "Broker",
    "BrokerUnavailable",
    "Envelope",
    "Handler",
    "MemoryBroker",
    "NatsJetStream",
    "PublishRefused",
    "RabbitMQ",
    "Relay",
    "RelayCounters",
    "broker_from",
]
