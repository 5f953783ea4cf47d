"""Four processes send 1,000 increments to one instance at once: it ends at exactly 1,000."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

import sagakit as sk
from sagakit.history import EventType

from ..servers import store_url_for

APP = Path(__file__).with_name("counterapp.py")


@pytest.mark.parametrize("backend", ["sqlite", "postgres", "mariadb"])
def test_four_processes_race_on_one_instance_and_lose_nothing(backend: str, tmp_path: Path) -> None:
    with store_url_for(backend, tmp_path) as url:
        asyncio.run(_migrate(url))
        go = tmp_path / "go"
        procs = [
            subprocess.Popen(
                [sys.executable, str(APP), url, f"p{n}", "250", str(go)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for n in range(4)
        ]
        try:
            for proc in procs:
                assert proc.stdout is not None
                assert proc.stdout.readline().strip() == "ready"
            go.touch()
            outputs = [proc.communicate(timeout=300)[0] for proc in procs]
        finally:
            for proc in procs:
                proc.kill()
        assert all(p.returncode == 0 for p in procs), outputs
        assert all("outcomes ['applied']" in out for out in outputs), outputs
        n, applied = asyncio.run(_count(url))
        assert (n, applied) == (1000, 1000)


async def _migrate(url: str) -> None:
    store = sk.open_store(url)
    await store.open()
    await store.close()


async def _count(url: str) -> tuple[int, int]:
    store = sk.open_store(url)
    await store.open(migrate=False)
    try:
        instance = await store.get("counter:hot")
        assert instance is not None
        history = await store.events("counter:hot")
        return instance.data["n"], sum(e.type == EventType.EVENT_APPLIED for e in history)
    finally:
        await store.close()
