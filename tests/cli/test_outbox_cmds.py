"""``sagakit relay`` publishes the outbox; ``sagakit outbox list|retry`` show and repair it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import sagakit as sk
from sagakit.store.records import OutboxQuery, utcnow

from .outboxapp import sagas
from .test_cli import cli


def published_by_sagas(url: str) -> None:
    async def go() -> None:
        async with sk.Runtime(url, sagas=sagas, workers=0) as rt:
            for i in range(2):
                await rt.run("announce", saga_id=f"a{i}")

    asyncio.run(go())


def relay_burst(url: str) -> None:
    """``sagakit relay --burst`` on the in-process broker; it must succeed."""
    code, out = cli(
        "relay",
        "--db",
        url,
        "--app",
        "tests.cli.outboxapp:sagas",
        "--broker",
        "memory://",
        "--burst",
    )
    assert code == 0, out


def rows(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


def test_list_dead_retry_and_relay(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/outbox.db"
    published_by_sagas(url)
    # Given four pending messages, one of which the broker kept refusing
    code, out = cli("outbox", "list", "--db", url, "--state", "pending", "--json")
    assert code == 0 and len(rows(out)) == 4

    async def kill_one() -> int:
        store = sk.open_store(url)
        await store.open()
        try:
            first = (await store.list_outbox(OutboxQuery(saga_id="a0")))[-1]
            assert first.id is not None
            await store.outbox_failed(first.id, error="no queue bound", retry_at=None, now=utcnow())
            return first.id
        finally:
            await store.close()

    dead_id = asyncio.run(kill_one())
    code, out = cli("outbox", "list", "--db", url, "--state", "dead", "--json")
    assert code == 0
    assert [(r["id"], r["saga_id"], r["last_error"]) for r in rows(out)] == [
        (dead_id, "a0", "no queue bound")
    ]
    code, out = cli("outbox", "list", "--db", url, "--state", "dead")
    assert code == 0 and "dead" in out and "┃ id ┃" in out  # the table (cells wrap at 80)
    # When the relay runs, the dead message and its saga's later one stay; the rest go
    relay_burst(url)
    code, out = cli("outbox", "list", "--db", url, "--state", "published", "--json")
    assert sorted(r["saga_id"] for r in rows(out)) == ["a1", "a1"]
    # and once retried, everything is published, in order
    code, out = cli("outbox", "retry", "--db", url, str(dead_id))
    assert code == 0 and "1 message(s) will be sent again" in out
    relay_burst(url)
    code, out = cli("outbox", "list", "--db", url, "--state", "pending", "--json")
    assert rows(out) == []


def test_bad_input_says_what_to_do(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/outbox.db"
    published_by_sagas(url)
    code, out = cli("outbox", "list", "--db", url, "--state", "lost")
    assert code == 2 and "'lost' is not a state; use one of pending, published, dead" in out
    code, out = cli("outbox", "retry", "--db", url)
    assert code == 2 and "--all-dead" in out
    code, out = cli("outbox", "retry", "--db", url, "999")
    assert code == 0 and "0 message(s)" in out and "were not dead" in out
    code, out = cli("relay", "--db", url, "--app", "tests.cli.outboxapp:sagas", "--burst")
    assert code == 2 and "no broker: give --broker URL" in out
