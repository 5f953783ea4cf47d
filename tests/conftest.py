"""Shared fixtures: a store URL per backend, each test on its own database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .servers import store_url_for


@pytest.fixture(params=["memory", "sqlite", "postgres", "mariadb"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store URL for each backend; server backends get their own schema/database."""
    with store_url_for(request.param, tmp_path) as url:
        yield url
