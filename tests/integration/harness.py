"""Real worker processes for crash tests: spawn, watch their notes, kill, finish, check."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sagakit as sk

from ..servers import store_url_for

HERE = Path(__file__).parent
LEASE = 1.0


@dataclass
class Lab:
    """One test's database, note file and worker processes."""

    tmp: Path
    url: str = ""
    log: Path = field(init=False)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.url = self.url or f"sqlite:///{self.tmp}/sagas.db"
        self.log = self.tmp / "notes.log"
        self.log.touch()

    # -- processes ------------------------------------------------------------------------

    def spawn(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start ``sagakit worker`` on this lab's database."""
        worker = ["-m", "sagakit", "worker", "--db", self.url, "--app", "crashapp:sagas"]
        return self._popen(*worker, "--lease", str(LEASE), "--poll", "0.05", *args, env=env)

    def _popen(self, *argv: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start ``python *argv`` with this lab's note file; its output goes to a file."""
        n = len(self.procs)
        full_env = {**os.environ, "CRASH_LOG": str(self.log), **(env or {})}
        full_env["PYTHONPATH"] = os.pathsep.join([str(HERE), full_env.get("PYTHONPATH", "")])
        proc = subprocess.Popen(
            [sys.executable, *argv],
            env=full_env,
            stdout=open(self.tmp / f"worker{n}.out", "wb"),  # noqa: SIM115 - closed with the process
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def run_app(self, *args: str) -> subprocess.Popen[bytes]:
        """Start the user application ``userapp.py`` (a default Runtime) on this database."""
        return self._popen(str(HERE / "userapp.py"), self.url, *args)

    def output(self, proc: subprocess.Popen[bytes]) -> str:
        """What a worker printed."""
        return (self.tmp / f"worker{self.procs.index(proc)}.out").read_text()

    def finish(
        self, rounds: int = 30, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
    ) -> None:
        """Run burst workers until every saga is terminal (waiting out dead workers' leases)."""
        for _ in range(rounds):
            proc = self.spawn("--burst", *args, env=env)
            proc.wait(timeout=120)
            if all(r.is_terminal or r.status == sk.SagaStatus.PAUSED for r in self.sagas()):
                return
            time.sleep(LEASE / 2)
        raise AssertionError(f"sagas not finished: {[(r.id, r.status) for r in self.sagas()]}")

    def cleanup(self) -> None:
        """Kill whatever is still running."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    # -- notes ----------------------------------------------------------------------------

    def notes(self) -> list[list[str]]:
        """Every note: [time, what, step, saga id, attempt, pid]."""
        return [line.split() for line in self.log.read_text().splitlines() if line.strip()]

    def count(self, what: str, step: str, saga_id: str | None = None) -> int:
        """How often ``what`` happened to ``step`` (of ``saga_id``)."""
        return sum(
            1 for n in self.notes() if n[1] == what and n[2] == step and saga_id in (None, n[3])
        )

    def wait_until_working(self, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
        """Wait until the worker ``proc`` has opened its store and polls for sagas."""
        deadline = time.monotonic() + timeout
        while " running " not in self.output(proc):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError(f"the worker never started: {self.output(proc)}")
            time.sleep(0.01)

    def wait_for(self, what: str, step: str, *, count: int = 1, timeout: float = 30) -> None:
        """Wait until ``what step`` has been noted ``count`` times."""
        deadline = time.monotonic() + timeout
        while self.count(what, step) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"no '{what} {step}' within {timeout}s: {self.notes()}")
            time.sleep(0.01)

    def wait_until(
        self, saga_id: str, statuses: Iterable[sk.SagaStatus], timeout: float = 60
    ) -> sk.SagaRecord:
        """Poll the database until the saga is in one of ``statuses``."""
        wanted = set(statuses)
        deadline = time.monotonic() + timeout
        while True:
            record = self.saga(saga_id)
            if record.status in wanted:
                return record
            if time.monotonic() > deadline:
                raise AssertionError(f"saga {saga_id} still {record.status}")
            time.sleep(0.05)

    # -- the database ---------------------------------------------------------------------

    def _with_store(self, fn: Any) -> Any:
        async def go() -> Any:
            store = sk.open_store(self.url)
            await store.open(migrate=False)  # start() created the schema
            try:
                return await fn(store)
            finally:
                await store.close()

        return asyncio.run(go())

    def start(self, saga_type: str, contexts: dict[str, dict[str, Any]]) -> None:
        """Durably enqueue one saga per id (no worker in this process)."""

        async def go() -> None:
            async with sk.Runtime(self.url, sagas=_sagas(), workers=0) as rt:
                for saga_id, context in contexts.items():
                    await rt.start(saga_type, context, saga_id=saga_id)

        asyncio.run(go())

    def saga(self, saga_id: str) -> sk.SagaRecord:
        record = self._with_store(lambda s: s.get(saga_id))
        assert record is not None
        return record

    def sagas(self) -> list[sk.SagaRecord]:
        from sagakit.store.records import SagaQuery

        return self._with_store(lambda s: s.list(SagaQuery(limit=10_000)))

    def events(self, saga_id: str) -> list[sk.SagaEvent]:
        return self._with_store(lambda s: s.events(saga_id))

    def all_events(self) -> dict[str, list[sk.SagaEvent]]:
        """Every saga's history, read over one connection."""

        async def read(store: sk.SagaStore) -> dict[str, list[sk.SagaEvent]]:
            from sagakit.store.records import SagaQuery

            sagas = await store.list(SagaQuery(limit=100_000))
            return {r.id: await store.events(r.id) for r in sagas}

        return self._with_store(read)


def _sagas() -> list[sk.Saga]:
    sys.path.insert(0, str(HERE))
    import crashapp

    return crashapp.sagas


def kill(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Send ``sig``; for SIGKILL also reap the process."""
    proc.send_signal(sig)
    if sig == signal.SIGKILL:
        proc.wait(timeout=30)


def assert_consistent(
    lab: Lab,
    saga: sk.SagaRecord,
    steps: list[str],
    events: list[sk.SagaEvent] | None = None,
    notes: Counter[tuple[str, str, str]] | None = None,
) -> None:
    """A terminal saga's history: each step checkpointed once, undone once, in order."""
    events = lab.events(saga.id) if events is None else events
    if notes is None:
        notes = Counter((n[1], n[2], n[3]) for n in lab.notes())
    assert [e.seq for e in events] == list(range(1, len(events) + 1)), saga.id
    completed = [e.step for e in events if e.type == "step_completed"]
    undone = [e.step for e in events if e.type == "compensation_completed"]
    assert not [s for s, n in Counter(completed).items() if n > 1], (saga.id, completed)
    assert not [s for s, n in Counter(undone).items() if n > 1], (saga.id, undone)
    assert completed == steps[: len(completed)], (saga.id, completed)
    if saga.status == sk.SagaStatus.COMPLETED:
        assert completed == steps
        assert undone == []
    elif saga.status == sk.SagaStatus.COMPENSATED:
        assert undone == list(reversed(completed)), (saga.id, completed, undone)
    # what the history says was checkpointed really ran (at least once)
    for step in completed:
        assert notes["done", step, saga.id] >= 1
    for step in undone:
        assert notes["undone", step, saga.id] >= 1
    terminal = {
        sk.SagaStatus.COMPLETED: "saga_completed",
        sk.SagaStatus.COMPENSATED: "saga_compensated",
        sk.SagaStatus.FAILED: "saga_failed",
    }
    if saga.status in terminal:
        assert events[-1].type == terminal[saga.status]


def lab_on(backend: str, tmp_path: Path) -> Iterator[Lab]:
    """Yield a lab on a fresh database of ``backend`` (sqlite, postgres or mariadb)."""
    with store_url_for(backend, tmp_path) as url:
        lab = Lab(tmp_path, url=url)
        try:
            yield lab
        finally:
            lab.cleanup()
