"""Shared fixtures: a store URL per backend, each test on its own database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .servers import (
    drop_mysql_database,
    drop_postgres_schema,
    fresh_mysql_database,
    fresh_postgres_schema,
)


@pytest.fixture(params=["memory", "sqlite", "postgres", "mariadb"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store URL for each backend; server backends get their own schema/database."""
    if request.param == "memory":
        yield "memory://"
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/sagas.db"
    elif request.param == "postgres":
        url, schema = fresh_postgres_schema()
        yield url
        drop_postgres_schema(schema)
    else:
        url, name = fresh_mysql_database()
        yield url
        drop_mysql_database(name)
