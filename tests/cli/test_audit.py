"""The audit questions teams ask, each one command: by reason, by actor, events, stats."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

import sagakit as sk

from .test_cli import cli, flaky_saga


@pytest.fixture
def audited(tmp_path: Path) -> str:
    """Completed by alice, declined (compensated, error) by bob, cancelled by carol."""
    url = f"sqlite:///{tmp_path}/audit.db"

    async def go() -> None:
        async with sk.Runtime(url, sagas=[flaky_saga()], workers=0) as rt:
            await rt.run("order", {"n": 1}, saga_id="ok-1", actor="alice")
            await rt.run("order", {"n": 2, "declined": True}, saga_id="declined-2", actor="bob")
            await rt.start("order", {"n": 3}, saga_id="cancelled-3", actor="carol")
            await rt.cancel("cancelled-3", actor="ops")

    asyncio.run(go())
    return url


def ids(out: str) -> set[str]:
    return {json.loads(line)["id"] for line in out.splitlines()}


def test_list_by_reason_actor_and_finish_time(audited: str) -> None:
    code, out = cli("list", "--db", audited, "--reason", "error", "--json")
    assert code == 0 and ids(out) == {"declined-2"}
    code, out = cli("list", "--db", audited, "--reason", "cancelled", "--json")
    assert code == 0 and ids(out) == {"cancelled-3"}
    code, out = cli("list", "--db", audited, "--actor", "alice", "--json")
    assert code == 0 and ids(out) == {"ok-1"}
    code, out = cli("list", "--db", audited, "--finished-since", "1h", "--json")
    assert code == 0 and ids(out) == {"ok-1", "declined-2", "cancelled-3"}


def test_a_reason_given_as_a_status_says_how_to_filter(audited: str) -> None:
    code, out = cli("list", "--db", audited, "--status", "cancelled")
    assert code == 2 and "is a reason, not a status" in out and "--reason cancelled" in out
    code, out = cli("list", "--db", audited, "--status", "bogus")
    assert code == 2 and "is not a status" in out


def test_events_answer_the_audit_queries(audited: str) -> None:
    code, out = cli("events", "--db", audited, "--type", "step_failed", "--since", "24h", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and {r["saga_id"] for r in rows} == {"declined-2"}
    # the automatic rollback of bob's saga is attributed to bob
    code, out = cli(
        "events", "--db", audited, "--type", "compensation_started", "--actor", "bob", "--json"
    )
    assert code == 0 and [json.loads(line)["saga_id"] for line in out.splitlines()] == [
        "declined-2"
    ]
    code, out = cli("events", "--db", audited, "--saga", "cancelled-3", "--json")
    types = [json.loads(line)["type"] for line in out.splitlines()]
    assert "operator_cancel" in types and "saga_started" in types
    code, out = cli("events", "--db", audited, "--saga-type", "order")
    assert code == 0 and "events" in out


def test_stats_break_down_by_reason_and_cancelled_is_no_failure(audited: str) -> None:
    code, out = cli("stats", "--db", audited, "--json")
    summary = json.loads(out)
    assert summary["by_reason"]["COMPENSATED"] == {"error": 1, "cancelled": 1}
    assert summary["success_rate"] == pytest.approx(1 / 2)  # ok-1 of ok-1 and declined-2


@pytest.mark.parametrize("command", ["list", "stuck", "cleanup"])
def test_huge_durations_are_refused_in_one_line(audited: str, command: str) -> None:
    option = {"list": "--older-than", "stuck": "--older-than", "cleanup": "--archived-older-than"}
    for huge in ("99999999999d", "99999999d"):
        code, out = cli(command, "--db", audited, option[command], huge)
        assert code == 2 and option[command] in out and "Traceback" not in out, (huge, out)


def test_health_json_gives_pool_numbers_and_a_url_without_password(tmp_path: Path) -> None:
    from ..servers import store_url_for

    with store_url_for("postgres", tmp_path) as url:
        assert cli("migrate", "--db", url)[0] == 0
        secret = url.replace("postgres@", "postgres:not-shown@")
        code, out = cli("health", "--db", secret, "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] is True
    assert set(report["pool_stats"]) == {"size", "checked_out", "overflow"}
    assert report["pool_stats"]["size"] == 10
    assert "?schema=t_" in report["store"] and "not-shown" not in out


def test_stats_table_shows_the_reasons(audited: str) -> None:
    code, out = cli("stats", "--db", audited)
    assert code == 0 and "COMPENSATED by reason: cancelled 1, error 1" in out
