"""The store contract, run against every backend: memory, SQLite, PostgreSQL, MariaDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import sagakit as sk
from sagakit.store import SagaStore
from sagakit.testing import StoreContract

from ..servers import store_url_for


class TestMemoryStore(StoreContract):
    persistent = False

    async def make_store(self, tmp_path: Path) -> SagaStore:
        return sk.MemoryStore()


class TestSqliteStore(StoreContract):
    async def make_store(self, tmp_path: Path) -> SagaStore:
        return sk.open_store(f"sqlite:///{tmp_path}/contract.db")


class TestPostgresStore(StoreContract):
    @pytest.fixture(autouse=True)
    def database(self, tmp_path: Path) -> Iterator[None]:
        with store_url_for("postgres", tmp_path) as self.url:
            yield

    async def make_store(self, tmp_path: Path) -> SagaStore:
        return sk.open_store(self.url)


class TestMariadbStore(TestPostgresStore):
    @pytest.fixture(autouse=True)
    def database(self, tmp_path: Path) -> Iterator[None]:
        with store_url_for("mariadb", tmp_path) as self.url:
            yield
