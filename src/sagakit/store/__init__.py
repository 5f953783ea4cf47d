"""Persistence: the store port, its records, and the adapters behind store URLs."""

from .base import SagaStore
from .memory import MemoryStore
from .records import EventQuery, OutboxMessage, SagaEvent, SagaQuery, SagaRecord, utcnow
from .urls import DEFAULT_URL, open_store, redact

__all__ = [
    "DEFAULT_URL",
    "EventQuery",
    "MemoryStore",
    "OutboxMessage",
    "SagaEvent",
    "SagaQuery",
    "SagaRecord",
    "SagaStore",
    "open_store",
    "redact",
    "utcnow",
]
