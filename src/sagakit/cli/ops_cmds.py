"""Operator commands: stats, stuck, health, cleanup, export/import/copy, validate, backup."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from .. import reports, transfer
from ..errors import SagaError
from ..status import SagaStatus
from ..store.base import SagaStore
from ..store.records import SagaEvent, SagaQuery, SagaRecord, utcnow
from ..store.urls import open_store, redact
from .common import DbOption, console, errors, run_async, wrapping_table
from .durations import parse_duration
from .store_cmds import opened

Duration = Annotated[timedelta, typer.Option(parser=parse_duration, metavar="DURATION")]


def stats(
    db: DbOption, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Counts by status and type, success rate, and p50/p95 saga durations.

    Example: sagakit stats --db sqlite:///sagas.db
    """

    async def main() -> None:
        async with opened(db) as store:
            summary = await reports.stats(store)
        if as_json:
            print(json.dumps(summary.to_dict()))
            return
        table = wrapping_table("status", "sagas")
        for status in SagaStatus:
            table.add_row(status.value, str(summary.by_status.get(status.value, 0)))
        console.print(table)
        by_type = wrapping_table("type", *[s.value for s in SagaStatus])
        for saga_type, counts in sorted(summary.by_type.items()):
            by_type.add_row(saga_type, *[str(counts.get(s.value, 0)) for s in SagaStatus])
        console.print(by_type)
        rate = "n/a" if summary.success_rate is None else f"{summary.success_rate:.1%}"
        p50 = "n/a" if summary.p50_seconds is None else f"{summary.p50_seconds:.3f}s"
        p95 = "n/a" if summary.p95_seconds is None else f"{summary.p95_seconds:.3f}s"
        console.print(f"success rate {rate}   duration p50 {p50}   p95 {p95}")

    run_async(main)


def stuck(
    db: DbOption,
    older_than: Duration = timedelta(hours=1),
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """In-progress sagas with no checkpoint for longer than --older-than.

    Example: sagakit stuck --db sqlite:///sagas.db --older-than 1h
    """

    async def main() -> None:
        async with opened(db) as store:
            found = await reports.stuck(store, older_than)
        if as_json:
            for r in found:
                print(
                    json.dumps(
                        {
                            "id": r.id,
                            "saga_type": r.saga_type,
                            "status": r.status.value,
                            "step": r.current_step,
                            "updated_at": r.updated_at.isoformat(),
                            "lease_owner": r.lease_owner,
                        }
                    )
                )
            return
        table = wrapping_table("id", "type", "status", "step", "last checkpoint", "lease owner")
        for r in found:
            table.add_row(
                r.id,
                r.saga_type,
                r.status.value,
                r.current_step or "",
                r.updated_at.isoformat(timespec="seconds"),
                r.lease_owner or "",
            )
        console.print(table)
        console.print(f"{len(found)} stuck for longer than {older_than}")

    run_async(main)


def health(
    db: DbOption,
    stuck_after: Duration = timedelta(hours=1),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Exit 0 if the store answers, 1 if not; shows latency, pool use, stuck and failed sagas.

    Example: sagakit health --db postgresql://app@db/sagas --json
    """

    async def main() -> reports.Health:
        try:
            store = open_store(db)
            await store.open(migrate=False)
        except SagaError as e:
            return reports.Health(ok=False, store=redact(db), latency_ms=None, error=str(e))
        try:
            return await reports.health(store, stuck_after=stuck_after)
        finally:
            await store.close()

    result = run_async(main)
    if as_json:
        print(json.dumps(result.to_dict()))
    else:
        mark = "[green]ok[/green]" if result.ok else "[red]DOWN[/red]"
        console.print(
            f"{mark} {result.store} latency="
            f"{'n/a' if result.latency_ms is None else f'{result.latency_ms}ms'} pool={result.pool} "
            f"stuck={result.stuck} failed={result.failed}"
            + (f" error={result.error}" if result.error else ""),
            highlight=False,
        )
    raise typer.Exit(0 if result.ok else 1)


def cleanup(
    db: DbOption,
    archived_older_than: Duration = timedelta(days=30),
    archive_finished_older_than: Annotated[
        timedelta | None,
        typer.Option(
            parser=parse_duration,
            metavar="DURATION",
            help="Also archive COMPLETED/COMPENSATED sagas finished this long ago.",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Count, change nothing.")] = False,
) -> None:
    """Delete sagas archived longer ago than --archived-older-than (FAILED ones never are).

    Example: sagakit cleanup --db sqlite:///sagas.db --archived-older-than 30d --dry-run
    """

    async def main() -> None:
        now = utcnow()
        async with opened(db) as store:
            if archive_finished_older_than is not None and not dry_run:
                n = await store.archive(finished_before=now - archive_finished_older_than, now=now)
                console.print(f"archived {n} finished sagas")
            n = await store.purge(archived_before=now - archived_older_than, dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        console.print(f"{verb} {n} sagas archived more than {archived_older_than} ago")

    run_async(main)


def export(
    db: DbOption,
    out: Annotated[Path, typer.Option("--out", help="File to write (JSON Lines).")],
) -> None:
    """Write every saga with its history to a JSON Lines file.

    Example: sagakit export --db sqlite:///sagas.db --out sagas.jsonl
    """

    async def main() -> int:
        count = 0
        async with opened(db) as store:
            with out.open("w", encoding="utf-8") as f:
                async for record, events in transfer.iter_sagas(store):
                    f.write(transfer.saga_line(record, events) + "\n")
                    count += 1
        return count

    console.print(f"exported {run_async(main)} sagas to {out}")


def import_(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A JSON Lines export.")],
    db: DbOption,
) -> None:
    """Import sagas from an export; checks every line first, imports nothing if one is bad.

    Example: sagakit import sagas.jsonl --db postgresql://app@db/sagas
    """
    items: list[tuple[SagaRecord, list[SagaEvent]]] = []
    with file.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                try:
                    items.append(transfer.parse_line(line, number))
                except transfer.BadLine as e:
                    errors.print(
                        f"[red]error:[/red] {file}: {e}; nothing was imported", highlight=False
                    )
                    raise typer.Exit(1) from None

    async def main() -> tuple[int, int]:
        async with opened(db, migrate=True) as store:
            return await transfer.import_sagas(store, items)

    imported, skipped = run_async(main)
    console.print(f"imported {imported} sagas, {skipped} already present")


def copy(
    source: Annotated[str, typer.Option("--from", help="Store URL to copy from.")],
    target: Annotated[str, typer.Option("--to", help="Store URL to copy to (schema created).")],
) -> None:
    """Copy every saga and its history between stores (e.g. SQLite to PostgreSQL); re-runnable.

    Example: sagakit copy --from sqlite:///sagas.db --to postgresql://app@db/sagas
    """

    async def main() -> tuple[int, int]:
        async with opened(source) as src, opened(target, migrate=True) as dst:
            total = sum((await src.count_by_status()).values())
            with Progress(console=console) as bar:
                task = bar.add_task("copying sagas", total=total)

                async def pairs() -> list[tuple[SagaRecord, list[SagaEvent]]]:
                    return [item async for item in transfer.iter_sagas(src)]

                done = await transfer.import_sagas(
                    dst, await pairs(), progress=lambda: bar.advance(task)
                )
        return done

    imported, skipped = run_async(main)
    console.print(f"copied {imported} sagas, {skipped} already present in the target")


def validate(db: DbOption) -> None:
    """Check a store end to end: schema version, counts, find by status, save/load/delete.

    Example: sagakit validate --db sqlite:///sagas.db
    """

    async def main() -> None:
        async with opened(db) as store:
            revision = await _revision(store)
            counts = await store.count_by_status()
            console.print(f"schema revision: {revision}")
            console.print(
                f"sagas: {sum(counts.values())} "
                + " ".join(f"{s.value}={n}" for s, n in sorted(counts.items()))
            )
            probe = SagaRecord(
                id=f"sagakit-validate-{uuid.uuid4().hex}",
                saga_type="__validate",
                status=SagaStatus.COMPLETED,
                data={"probe": True},
                version=1,
            )
            _, created = await store.create(probe)
            loaded = await store.get(probe.id)
            if not created or loaded is None or loaded.data != {"probe": True}:
                raise SagaError("save/load round trip returned something else than was saved")
            found = await store.list(
                SagaQuery(statuses=(SagaStatus.COMPLETED,), saga_type=probe.saga_type, limit=10)
            )
            if probe.id not in {r.id for r in found}:
                raise SagaError("find by status did not find the saved saga")
            if not await store.delete(probe.id) or await store.get(probe.id) is not None:
                raise SagaError("delete did not remove the saved saga")
            console.print("save/load/find/delete round trip: ok")

    run_async(main)


async def _revision(store: SagaStore) -> str:
    reader = getattr(store, "schema_revision", None)
    return str(await reader()) if reader is not None else "n/a (no schema)"


def backup(
    db: DbOption,
    out: Annotated[Path, typer.Option("--out", help="Backup file to write.")],
) -> None:
    """Write a consistent copy of an SQLite store while workers run (SQLite online backup).

    For PostgreSQL use: pg_dump --format=custom --schema=SCHEMA DBNAME > sagas.dump
    Example: sagakit backup --db sqlite:///sagas.db --out sagas-backup.db
    """
    store = open_store(db)
    engine = getattr(store, "engine", None)
    if engine is None or engine.url.get_backend_name() != "sqlite":
        errors.print(
            "[red]error:[/red] backup copies SQLite stores; for PostgreSQL run "
            "pg_dump --format=custom --schema=SCHEMA DBNAME > sagas.dump (or --table='saga_*' "
            "--table=sagakit_alembic_version in the public schema); for MariaDB run "
            "mariadb-dump DBNAME saga_instances saga_events saga_outbox saga_inbox "
            "sagakit_alembic_version > sagas.sql",
            highlight=False,
            markup=True,
        )
        raise typer.Exit(1)
    source_path = engine.url.database
    if not source_path or not Path(source_path).exists():
        raise typer.BadParameter(f"no database file at {source_path!r}", param_hint="--db")
    if out.exists():
        raise typer.BadParameter(f"{out} exists; choose a new file", param_hint="--out")

    def copy_file() -> int:
        source = sqlite3.connect(source_path)
        target = sqlite3.connect(out)
        try:
            source.backup(target, pages=1024)
            return int(target.execute("SELECT count(*) FROM saga_instances").fetchone()[0])
        finally:
            target.close()
            source.close()

    try:
        count = asyncio.run(asyncio.to_thread(copy_file))
    except sqlite3.Error as e:
        errors.print(f"[red]error:[/red] backup failed: {e}", highlight=False)
        sys.exit(1)
    console.print(f"backed up {count} sagas to {out}")


def register_ops_commands(app: typer.Typer) -> None:
    """Add the operator commands to the ``sagakit`` app."""
    for command in (stats, stuck, health, cleanup, export, copy, validate, backup):
        app.command()(command)
    app.command("import")(import_)
