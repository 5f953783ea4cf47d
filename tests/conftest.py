"""Shared fixtures: a store URL per backend, each test on its own database."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["memory", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store URL for each backend that needs no server."""
    if request.param == "memory":
        return "memory://"
    return f"sqlite:///{tmp_path}/sagas.db"
