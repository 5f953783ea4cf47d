"""Web test fixtures: a store per test on SQLite and PostgreSQL, a runtime, an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

import sagakit as sk
from sagakit.web import WebSettings, create_app

from ..servers import store_url_for
from .sagas import BROKEN, sagas

TOKENS = "alice=alice-token,ci-bot=bot-token"
ALICE = {"Authorization": "Bearer alice-token"}


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh SQLite file or PostgreSQL schema for each test."""
    with store_url_for(request.param, tmp_path) as url:
        yield url


@pytest.fixture(autouse=True)
def broken_warehouse() -> Iterator[None]:
    BROKEN["warehouse"] = True
    yield
    BROKEN["warehouse"] = True


@pytest.fixture
async def runtime(store_url: str) -> AsyncIterator[sk.Runtime]:
    async with sk.Runtime(store_url, sagas=sagas(), workers=1, poll_interval=0.05) as rt:
        yield rt


def client_for(runtime: sk.Runtime, **settings: object) -> httpx.AsyncClient:
    """An HTTP client talking to ``create_app(runtime)`` in-process."""
    values: dict[str, object] = {"tokens": TOKENS, **settings}
    app = create_app(runtime, settings=WebSettings(**values))  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5555))
    return httpx.AsyncClient(transport=transport, base_url="http://sagakit.test")


@pytest.fixture
async def client(runtime: sk.Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(runtime, read_open=True) as c:
        yield c


async def populate(rt: sk.Runtime) -> None:
    """Three finished sagas: ok-1 COMPLETED, undone-2 COMPENSATED, failed-3 FAILED."""
    await rt.run("order", {"n": 1}, saga_id="ok-1")
    await rt.run("order", {"n": 2, "declined": True}, saga_id="undone-2")
    await rt.run("order", {"n": 3, "declined": True, "undo_fails": True}, saga_id="failed-3")
