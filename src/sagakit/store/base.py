"""The persistence port: what the engine, workers, relay and operators need from a store."""

from __future__ import annotations

from .delivery_ports import InboxPort, OutboxPort
from .ports import ClaimPort, HistoryPort, MaintenancePort, SagaStatePort


class SagaStore(SagaStatePort, HistoryPort, ClaimPort, OutboxPort, InboxPort, MaintenancePort):
    """Where sagas are checkpointed. Every adapter passes ``sagakit.testing.StoreContract``.

    Writes are conditional on the saga's ``version``: a writer that read an older version
    gets ``ConcurrencyError`` and nothing is written. Each checkpoint of a saga (its row,
    events, outbox messages and inbox marks) is one transaction.
    """

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"
