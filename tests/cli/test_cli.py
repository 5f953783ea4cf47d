"""The sagakit command line, run as a user runs it, against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import sagakit as sk
from sagakit.cli import app
from sagakit.store.migrate import head_revision

from ..servers import store_url_for

runner = CliRunner()


def flaky_saga() -> sk.Saga:
    saga = sk.Saga("order", retry=sk.Retry(max_attempts=1))

    @saga.step
    async def reserve(ctx: sk.StepContext) -> dict[str, object]:
        return {"reserved": ctx["n"]}

    @reserve.compensation
    async def unreserve(ctx: sk.StepContext) -> None:
        if ctx.get("undo_fails"):
            raise RuntimeError("warehouse offline")

    @saga.step
    async def charge(ctx: sk.StepContext) -> dict[str, object]:
        if ctx.get("declined"):
            raise RuntimeError("card declined <b>")
        return {"charged": True, "note": "ünïcode ✓"}

    return saga


def populate(url: str) -> None:
    """Three sagas: completed, compensated, failed."""

    async def go() -> None:
        async with sk.Runtime(url, sagas=[flaky_saga()]) as rt:
            await rt.run("order", {"n": 1}, saga_id="ok-1")
            await rt.run("order", {"n": 2, "declined": True}, saga_id="undone-2")
            await rt.run(
                "order", {"n": 3, "declined": True, "undo_fails": True}, saga_id="failed-3"
            )

    asyncio.run(go())


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with store_url_for(request.param, tmp_path) as store_url:
        yield store_url


def test_migrate_list_and_show(url: str) -> None:
    assert cli("migrate", "--db", url)[0] == 0
    populate(url)
    code, out = cli("list", "--db", url, "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert {r["id"]: r["status"] for r in rows} == {
        "ok-1": "COMPLETED", "undone-2": "COMPENSATED", "failed-3": "FAILED",
    }  # fmt: skip
    code, out = cli("list", "--db", url, "--json", "--status", "failed")
    assert [json.loads(line)["id"] for line in out.splitlines()] == ["failed-3"]
    code, out = cli("list", "--db", url, "--json", "--older-than", "1h")
    assert out.strip() == ""
    code, out = cli("show", "failed-3", "--db", url)
    assert code == 0 and "failed-3" in out and "warehouse" in out
    code, out = cli("show", "failed-3", "--db", url, "--json")
    shown = json.loads(out)
    assert shown["saga"]["status"] == "FAILED"
    failures = [e for e in shown["events"] if e["type"] == "compensation_failed"]
    assert failures[0]["error"]["message"] == "warehouse offline"


def test_operator_actions_are_audited_and_refusals_are_one_line(url: str) -> None:
    populate(url)
    code, out = cli(
        "retry", "failed-3", "--db", url, "--reason", "warehouse back", "--actor", "ops"
    )
    assert code == 0 and "now COMPENSATING" in out
    code, out = cli("pause", "ok-1", "--db", url)
    assert code == 1
    assert "cannot pause saga 'ok-1': it is COMPLETED" in out
    code, out = cli("resume", "nope", "--db", url)
    assert code == 1 and "no saga with id 'nope'" in out

    async def audit() -> list[sk.SagaEvent]:
        store = sk.open_store(url)
        await store.open()
        try:
            return [e for e in await store.events("failed-3") if e.type == "operator_retry"]
        finally:
            await store.close()

    [event] = asyncio.run(audit())
    assert (event.actor, event.reason) == ("ops", "warehouse back")


def test_stats_stuck_health_validate(url: str) -> None:
    populate(url)
    code, out = cli("stats", "--db", url, "--json")
    summary = json.loads(out)
    assert summary["by_status"] == {"COMPLETED": 1, "COMPENSATED": 1, "FAILED": 1}
    assert summary["success_rate"] == pytest.approx(1 / 3)
    assert summary["p50_seconds"] is not None
    code, out = cli("stuck", "--db", url, "--older-than", "0s", "--json")
    assert code == 0 and out.strip() == ""  # nothing in progress
    code, out = cli("health", "--db", url, "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] is True and report["failed"] == 1
    code, out = cli("validate", "--db", url)
    assert code == 0 and "round trip: ok" in out and f"schema revision: {head_revision()}" in out


def test_health_fails_with_exit_1_when_the_store_is_unreachable(tmp_path: Path) -> None:
    code, out = cli("health", "--db", f"sqlite:///{tmp_path}/missing/dir.db", "--json")
    assert code == 1
    assert json.loads(out)["ok"] is False


def test_export_import_export_gives_identical_files(url: str, tmp_path: Path) -> None:
    populate(url)
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert cli("export", "--db", url, "--out", str(first))[0] == 0
    target = f"sqlite:///{tmp_path}/imported.db"
    code, out = cli("import", str(first), "--db", target)
    assert code == 0 and "imported 3 sagas" in out
    code, out = cli("import", str(first), "--db", target)
    assert "imported 0 sagas, 3 already present" in out  # re-running is safe
    assert cli("export", "--db", target, "--out", str(second))[0] == 0
    assert first.read_text() == second.read_text()
    assert len(first.read_text().splitlines()) == 3


def test_import_reports_the_bad_line_and_imports_nothing(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path}/src.db"
    populate(source)
    good = tmp_path / "good.jsonl"
    cli("export", "--db", source, "--out", str(good))
    lines = good.read_text().splitlines()
    broken = json.loads(lines[1])
    broken["saga"]["status"] = "EXPLODED"
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([lines[0], json.dumps(broken), lines[2]]) + "\n")
    target = f"sqlite:///{tmp_path}/target.db"
    code, out = cli("import", str(bad), "--db", target)
    assert code == 2
    assert "line 2" in out and "EXPLODED" in out and "nothing was imported" in out
    assert not (tmp_path / "target.db").exists() or cli("list", "--db", target, "--json")[1] == ""


def test_copy_sqlite_to_postgres_keeps_every_saga_and_event(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path}/src.db"
    populate(source)
    with store_url_for("postgres", tmp_path) as target:
        code, out = cli("copy", "--from", source, "--to", target)
        assert code == 0 and "copied 3 sagas" in out
        code, out = cli("copy", "--from", source, "--to", target)
        assert "copied 0 sagas, 3 already present" in out
        a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
        cli("export", "--db", source, "--out", str(a))
        cli("export", "--db", target, "--out", str(b))
        assert a.read_text() == b.read_text()


def test_cleanup_archives_and_deletes_only_finished_sagas(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/c.db"
    populate(url)
    code, out = cli(
        "cleanup",
        "--db",
        url,
        "--archive-finished-older-than",
        "0s",
        "--archived-older-than",
        "0s",
        "--dry-run",
    )
    assert "would delete 0" in out
    code, out = cli(
        "cleanup",
        "--db",
        url,
        "--archive-finished-older-than",
        "0s",
        "--archived-older-than",
        "30d",
    )
    assert "archived 2 finished sagas" in out  # FAILED is kept for a person
    code, out = cli("cleanup", "--db", url, "--archived-older-than", "0s", "--dry-run")
    assert "would delete 2" in out
    code, out = cli("cleanup", "--db", url, "--archived-older-than", "0s")
    assert "deleted 2" in out
    _code, out = cli("list", "--db", url, "--json")
    assert [json.loads(line)["id"] for line in out.splitlines()] == ["failed-3"]


def test_backup_of_sqlite_is_a_consistent_copy(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/live.db"
    populate(url)
    out_file = tmp_path / "backup.db"
    code, out = cli("backup", "--db", url, "--out", str(out_file))
    assert code == 0 and "backed up 3 sagas" in out
    with sqlite3.connect(out_file) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM saga_events").fetchone()[0] > 3
    code, out = cli("backup", "--db", url, "--out", str(out_file))
    assert code == 2 and "exists" in out


def test_bad_arguments_name_the_argument(tmp_path: Path) -> None:
    code, out = cli("stuck", "--db", f"sqlite:///{tmp_path}/x.db", "--older-than", "soon")
    assert code == 2 and "--older-than" in out and "not a duration" in out
    code, out = cli("list", "--db", "oracle://x")
    assert code == 2 and "unknown backend 'oracle'" in out
    for command in ("list", "show", "retry", "worker", "stats", "export", "copy", "backup"):
        code, out = cli(command, "--help")
        assert code == 0 and "Example:" in out, command


def test_worker_runs_the_apps_runtime_as_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an application Runtime with its own hook, table prefix and lease
    url = f"sqlite:///{tmp_path}/shop.db"
    monkeypatch.setenv("SHOPAPP_DB", url)
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    import shopapp

    async def start() -> None:
        async with shopapp.runtime.replace() as rt:
            for i in range(3):
                await rt.start("shop", saga_id=f"s{i}")

    asyncio.run(start())
    # When the worker runs it with no --db and no other flag
    code, out = cli("worker", "--app", "shopapp:runtime", "--burst")
    # I expect the application's hook called, its prefixed tables used
    assert code == 0, out
    assert sorted(shopapp.finished) == ["s0", "s1", "s2"]
    tables = {
        row[0]
        for row in sqlite3.connect(tmp_path / "shop.db").execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
        )
    }
    assert "shop_saga_instances" in tables and "saga_instances" not in tables


def test_worker_app_mistakes_are_one_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/x.db"
    code, out = cli("worker", "--db", db, "--app", "tests.cli.shopapp:runtme")
    assert code == 2 and "has no attribute 'runtme'" in out and "runtime" in out
    assert "Traceback" not in out
    code, out = cli("worker", "--db", db, "--app", "tests.cli.shopapp:pack")
    assert code == 2 and "is the step 'pack', not a saga" in out
    code, out = cli("worker", "--db", "", "--app", "tests.cli.shopapp:shop")
    assert code == 2 and "empty" in out


def test_worker_gives_up_on_an_unreachable_database_when_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SAGAKIT_CONNECT_TIMEOUT", "10")  # restored after the command sets it
    code, out = cli(
        "worker",
        "--db",
        "postgresql://postgres@127.0.0.1:1/nowhere",
        "--app",
        "tests.cli.shopapp:shop",
        "--wait-for-db",
        "1",
        "--connect-timeout",
        "1",
    )
    assert code == 1 and "gave up after --wait-for-db 1s" in out and "Traceback" not in out
