"""Schedules and parked sagas outlive the process that made them (SIGKILL, then a new worker)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sagakit as sk
from sagakit.history import EventType

from ..servers import store_url_for

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.machines.shopapp:definitions"


def leave(url: str, what: str) -> None:
    """Run killedapp.py: it leaves ``what`` behind and is SIGKILLed."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "machines" / "killedapp.py"), url, what],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")},
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert done.stdout.strip() == "left"


def worker(url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sagakit", "worker", "--db", url, "--app", APP, "--poll", "0.05"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


async def read(url: str, saga_id: str) -> tuple[sk.SagaRecord | None, list[sk.SagaEvent]]:
    store = sk.open_store(url)
    await store.open(migrate=False)
    try:
        return await store.get(saga_id), await store.events(saga_id)
    finally:
        await store.close()


def until_status(url: str, saga_id: str, status: sk.SagaStatus, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        record, _ = asyncio.run(read(url, saga_id))
        if record is not None and record.status == status:
            return
        assert time.monotonic() < deadline, f"{saga_id} never became {status}: {record}"
        time.sleep(0.1)


@pytest.mark.parametrize("backend", ["sqlite", "postgres", "mariadb"])
def test_a_schedule_fires_after_its_process_was_killed(backend: str, tmp_path: Path) -> None:
    with store_url_for(backend, tmp_path) as url:
        # Given an order whose payment timeout was set by a process that was then killed
        leave(url, "schedule")
        # When a new worker runs
        w = worker(url)
        try:
            # I expect it to fire the timeout once, finalizing the order
            until_status(url, "order:k-1", sk.SagaStatus.COMPLETED)
        finally:
            w.send_signal(signal.SIGTERM)
            out, _ = w.communicate(timeout=60)
        assert w.returncode == 0, out
        record, history = asyncio.run(read(url, "order:k-1"))
        assert record is not None and record.data.get("timed_out") is True
        fired = [
            e for e in history if e.type == EventType.EVENT_APPLIED and e.step == "PaymentTimeout"
        ]
        assert len(fired) == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_parked_saga_is_woken_after_its_process_was_killed(backend: str, tmp_path: Path) -> None:
    with store_url_for(backend, tmp_path) as url:
        leave(url, "wait")
        w = worker(url)
        try:
            sent = subprocess.run(
                [
                    sys.executable, "-m", "sagakit", "send", "PaymentConfirmed",
                    "--data", '{"order_id": "ord-1", "amount": 9}', "--db", url, "--app", APP,
                ],
                capture_output=True, text=True, timeout=60, cwd=ROOT,
            )  # fmt: skip
            assert sent.returncode == 0, sent.stdout + sent.stderr
            until_status(url, "w-1", sk.SagaStatus.COMPLETED)
        finally:
            w.send_signal(signal.SIGTERM)
            out, _ = w.communicate(timeout=60)
        assert w.returncode == 0, out
        record, _ = asyncio.run(read(url, "w-1"))
        assert record is not None and record.data["shipped_for"] == 9
