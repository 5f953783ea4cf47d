"""The store contract, run against every backend: memory, SQLite, PostgreSQL, MariaDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import sagakit as sk
from sagakit.store import SagaStore
from sagakit.testing import StoreContract

from ..servers import (
    drop_mysql_database,
    drop_postgres_schema,
    fresh_mysql_database,
    fresh_postgres_schema,
)


class TestMemoryStore(StoreContract):
    persistent = False

    async def make_store(self, tmp_path: Path) -> SagaStore:
        return sk.MemoryStore()


class TestSqliteStore(StoreContract):
    async def make_store(self, tmp_path: Path) -> SagaStore:
        return sk.open_store(f"sqlite:///{tmp_path}/contract.db")


class TestPostgresStore(StoreContract):
    @pytest.fixture(autouse=True)
    def database(self) -> Iterator[None]:
        self.url, schema = fresh_postgres_schema()
        yield
        drop_postgres_schema(schema)

    async def make_store(self, tmp_path: Path) -> SagaStore:
        return sk.open_store(self.url)


class TestMariadbStore(StoreContract):
    @pytest.fixture(autouse=True)
    def database(self) -> Iterator[None]:
        self.url, name = fresh_mysql_database()
        yield
        drop_mysql_database(name)

    async def make_store(self, tmp_path: Path) -> SagaStore:
        return sk.open_store(self.url)
