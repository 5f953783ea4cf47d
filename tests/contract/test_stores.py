"""The store contract, run against every backend available here."""

from __future__ import annotations

from pathlib import Path

import sagakit as sk
from sagakit.store import SagaStore
from sagakit.testing import StoreContract


class TestMemoryStore(StoreContract):
    persistent = False

    async def make_store(self, tmp_path: Path) -> SagaStore:
        return sk.MemoryStore()


class TestSqliteStore(StoreContract):
    async def make_store(self, tmp_path: Path) -> SagaStore:
        return sk.open_store(f"sqlite:///{tmp_path}/contract.db")
