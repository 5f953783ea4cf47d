"""Many worker processes on one PostgreSQL (and MariaDB): kills, lost connections, restarts."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import text

import sagakit as sk

from ..servers import _pg, drop_postgres_schema, fresh_postgres_schema, store_url_for
from .harness import Lab, assert_consistent, kill, lab_on

STEPS = ["s0", "s1", "s2", "s3"]
S = sk.SagaStatus


@pytest.fixture
def pg_lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_on("postgres", tmp_path)


@pytest.fixture
def mariadb_lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_on("mariadb", tmp_path)


def wait_all_terminal(lab: Lab, timeout: float = 240) -> list[sk.SagaRecord]:
    deadline = time.monotonic() + timeout
    while True:
        sagas = lab.sagas()
        if all(r.is_terminal for r in sagas):
            return sagas
        assert time.monotonic() < deadline, Counter(r.status for r in sagas)
        time.sleep(0.5)


def check_all(lab: Lab, sagas: list[sk.SagaRecord], expected: int) -> None:
    assert len(sagas) == expected
    events = lab.all_events()
    notes = Counter((n[1], n[2], n[3]) for n in lab.notes())
    for saga in sagas:
        assert saga.status in (S.COMPLETED, S.COMPENSATED), (saga.id, saga.status)
        assert_consistent(lab, saga, STEPS, events[saga.id], notes)


def contexts(n: int) -> dict[str, dict[str, object]]:
    return {
        f"m{i:04d}": {"fail": "s3"} if i % 10 == 0 else {"sleep": {"s1": 0.01}} for i in range(n)
    }


def many_workers_two_killed(lab: Lab) -> None:
    lab.start("crashy", contexts(500))
    workers = [lab.spawn("--concurrency", "16") for _ in range(4)]
    deadline = time.monotonic() + 120
    while sum(r.is_terminal for r in lab.sagas()) < 100:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    kill(workers[0])
    kill(workers[1])
    sagas = wait_all_terminal(lab)
    for w in workers[2:]:
        kill(w, signal.SIGTERM)
        assert w.wait(timeout=60) == 0
    check_all(lab, sagas, 500)
    # every saga that was not failed on purpose completed
    assert {r.id for r in sagas if r.status == S.COMPENSATED} >= {
        f"m{i:04d}" for i in range(0, 500, 10)
    }


def test_four_workers_500_sagas_two_killed_on_postgres(pg_lab: Lab) -> None:
    many_workers_two_killed(pg_lab)


def test_four_workers_500_sagas_two_killed_on_mariadb(mariadb_lab: Lab) -> None:
    many_workers_two_killed(mariadb_lab)


def test_killed_connections_are_survived(pg_lab: Lab) -> None:
    # steps long enough (60 sagas x 1 s / 16 slots) that every kill meets running sagas
    pg_lab.start("crashy", {f"c{i}": {"sleep": {s: 0.25 for s in STEPS}} for i in range(60)})
    workers = [pg_lab.spawn("--concurrency", "8") for _ in range(2)]
    for _ in range(4):
        time.sleep(1.0)
        asyncio.run(
            _pg(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'sagakit' AND pid <> pg_backend_pid()"
            )
        )
    sagas = wait_all_terminal(pg_lab)
    for w in workers:
        kill(w, signal.SIGTERM)
        assert w.wait(timeout=60) == 0
    check_all(pg_lab, sagas, 60)
    assert all(r.status == S.COMPLETED for r in sagas)
    assert "unavailable" in "".join(pg_lab.output(w) for w in workers)  # the outage was seen


def test_a_full_postgres_restart_is_survived(pg_lab: Lab) -> None:
    pg_lab.start("crashy", {f"r{i}": {"sleep": {s: 0.05 for s in STEPS}} for i in range(60)})
    workers = [pg_lab.spawn("--concurrency", "8") for _ in range(2)]
    deadline = time.monotonic() + 60
    while sum(r.is_terminal for r in pg_lab.sagas()) < 5:  # the workers are at work
        assert time.monotonic() < deadline
        time.sleep(0.1)
    version = subprocess.run(["ls", "/etc/postgresql"], capture_output=True, text=True).stdout
    restart = subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version.split()[0], "main", "restart"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert restart.returncode == 0, restart.stderr
    sagas = wait_all_terminal(pg_lab)
    for w in workers:
        kill(w, signal.SIGTERM)
        assert w.wait(timeout=60) == 0
    check_all(pg_lab, sagas, 60)
    assert all(r.status == S.COMPLETED for r in sagas)


def wait_for_output(lab: Lab, worker: subprocess.Popen[bytes], text: str, count: int = 1) -> None:
    """Wait until the worker has printed ``text`` ``count`` times."""
    deadline = time.monotonic() + 30
    while lab.output(worker).count(text) < count:
        assert time.monotonic() < deadline, lab.output(worker)
        time.sleep(0.02)


def test_notify_wakes_a_worker_in_another_process(pg_lab: Lab) -> None:
    # Given a worker that would next poll in ten minutes, listening for new sagas
    worker = pg_lab.spawn("--poll", "600")
    wait_for_output(pg_lab, worker, "listening for new sagas")
    # When a saga is started from this process
    pg_lab.start("crashy", {"n": {}})
    # I expect it picked up long before the next poll
    saga = pg_lab.wait_until("n", [S.COMPLETED], timeout=20)
    assert saga.status == S.COMPLETED
    kill(worker, signal.SIGTERM)


HOSTILE = "a!b@c$d()e*_,/:;=?@ff[]22"


def test_url_hostile_password_works_and_never_shows(tmp_path: Path) -> None:
    _, schema = fresh_postgres_schema()
    role = f"sk_{schema}"
    asyncio.run(_pg(f"CREATE ROLE {role} LOGIN PASSWORD '{HOSTILE}'"))
    asyncio.run(_pg(f"GRANT ALL ON SCHEMA {schema} TO {role}"))
    try:
        store_url = (
            f"postgresql://{role}:{quote(HOSTILE, safe='')}@127.0.0.1:5432/test?schema={schema}"
        )
        saga = sk.Saga("hello", steps=[sk.Step("hi", lambda ctx: {"hi": True})])

        async def go() -> sk.SagaRecord:
            async with sk.Runtime(store_url, sagas=[saga]) as rt:
                assert HOSTILE not in repr(rt.store) and quote(HOSTILE, safe="") not in repr(
                    rt.store
                )
                return await rt.run("hello", {})

        assert asyncio.run(go()).status == S.COMPLETED
        # a wrong database in the same URL fails with an error that hides the password
        bad = store_url.replace("/test?", "/no_such_db?")
        with pytest.raises(sk.StoreError) as info:
            asyncio.run(sk.Runtime(bad, sagas=[saga]).open())
        assert HOSTILE not in str(info.value) and quote(HOSTILE, safe="") not in str(info.value)
    finally:
        drop_postgres_schema(schema)
        asyncio.run(_pg(f"DROP ROLE IF EXISTS {role}"))


def test_a_worker_started_while_the_database_is_down_waits_for_it(tmp_path: Path) -> None:
    lab = Lab(tmp_path, url="postgresql://postgres@127.0.0.1:5999/test")  # nothing listens
    try:
        worker = lab.spawn()
        deadline = time.monotonic() + 30
        while "waiting for the database" not in lab.output(worker):
            assert worker.poll() is None, lab.output(worker)
            assert time.monotonic() < deadline, lab.output(worker)
            time.sleep(0.1)
        assert worker.poll() is None  # still waiting, not crashed
        # and a stop while waiting is as graceful as any other
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        lab.cleanup()


def test_mariadb_migration_lock_is_released_after_the_schema_is_ready(tmp_path: Path) -> None:
    with store_url_for("mariadb", tmp_path) as url:

        async def go() -> object:
            store = sk.open_store(url)
            await store.open()
            try:
                lock = store._migration_lock  # type: ignore[attr-defined]
                async with store.engine.connect() as conn:  # type: ignore[attr-defined]
                    result = await conn.execute(text("SELECT IS_FREE_LOCK(:n)"), {"n": lock})
                    return result.scalar()
            finally:
                await store.close()

        assert asyncio.run(go()) == 1


def test_a_killed_listen_connection_is_reopened_and_still_wakes_workers(pg_lab: Lab) -> None:
    # Given a worker that would next poll in ten minutes, listening for new sagas
    worker = pg_lab.spawn("--poll", "600")
    wait_for_output(pg_lab, worker, "listening for new sagas")
    # When the server terminates its LISTEN connection
    asyncio.run(
        _pg(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'sagakit-listen'"
        )
    )
    wait_for_output(pg_lab, worker, "LISTEN connection")
    wait_for_output(pg_lab, worker, "listening for new sagas", count=2)
    # I expect a saga started afterwards picked up at once, not at the next poll
    pg_lab.start("crashy", {"after-kill": {}})
    saga = pg_lab.wait_until("after-kill", [S.COMPLETED], timeout=30)
    assert saga.status == S.COMPLETED
    kill(worker, signal.SIGTERM)
    assert worker.wait(timeout=30) == 0


PG_LOG = Path("/var/log/postgresql")


def _deadlocks(lab: Lab) -> int:
    """Deadlocks the server has reported so far (PostgreSQL log lines, InnoDB's counter)."""
    if lab.url.startswith("mysql"):

        async def read() -> int:
            import aiomysql

            conn = await aiomysql.connect(host="127.0.0.1", port=3306, user="root")
            try:
                async with conn.cursor() as cur:
                    await cur.execute("SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'")
                    row = await cur.fetchone()
                    return int(row[1])
            finally:
                conn.close()

        return asyncio.run(read())
    return sum(
        log.read_text(errors="replace").count("deadlock detected") for log in PG_LOG.glob("*.log")
    )


@pytest.mark.parametrize("backend", ["postgres", "mariadb"])
def test_short_leases_under_load_never_deadlock_or_run_a_step_twice(
    backend: str, tmp_path: Path
) -> None:
    for lab in lab_on(backend, tmp_path):
        # Given 2,000 sagas, four workers and a one-second lease renewed while checkpointing
        lab.start("crashy", {f"d{i}": {} for i in range(2000)})
        before = _deadlocks(lab)
        workers = [lab.spawn("--concurrency", "16") for _ in range(4)]
        sagas = wait_all_terminal(lab, timeout=600)
        for w in workers:
            kill(w, signal.SIGTERM)
            assert w.wait(timeout=60) == 0
        # I expect no deadlock, and with no kill no step attempt run twice
        assert _deadlocks(lab) == before
        twice = [
            k
            for k, n in Counter((n[2], n[3]) for n in lab.notes() if n[1] == "do").items()
            if n > 1
        ]
        assert twice == []
        check_all(lab, sagas, 2000)
        assert all(r.status == S.COMPLETED for r in sagas)
