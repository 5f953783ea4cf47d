"""Commands that move sagas: export, import, copy, and SQLite backup and restore."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from ..admin import transfer
from ..admin.transfer import ImportReport
from ..store.records import SagaEvent, SagaRecord
from ..store.sqlite import SqliteStore
from ..store.urls import open_store
from .common import DbOption, console, errors, fail, run_async
from .store_cmds import opened

KeepGoing = Annotated[
    bool,
    typer.Option(
        "--keep-going/--stop-on-error",
        help="On a saga the target cannot hold: skip it and go on, or stop there (default).",
    ),
]


def _persistent(url: str, option: str) -> str:
    """Refuse a store that lives in one process only: there is nothing to read or keep."""
    if url.startswith("memory://"):
        fail(
            f"{option} memory://: a memory store lives inside one process and is gone when "
            "it exits, so this command would see an empty store; use a sqlite:///, "
            "postgresql:// or mysql:// URL"
        )
    return url


def _new_file(out: Path, option: str, *, force: bool) -> Path:
    """Check that ``out`` can be written: a file in an existing folder, new unless forced."""
    if out.is_dir():
        fail(f"{option} {out} is a folder; give a file name inside it, e.g. {out / 'sagas.jsonl'}")
    if not out.parent.is_dir():
        fail(f"{option} {out}: the folder {out.parent} does not exist; create it first")
    if out.exists() and not force:
        fail(f"{option} {out} exists; choose a new file, or pass --force to replace it")
    return out


def _report(report: ImportReport, verb: str) -> None:
    console.print(f"{verb} {report.imported} sagas, {report.present} already present")
    for saga_id, why in report.failed:
        errors.print(f"[red]not {verb}:[/red] saga {saga_id!r}: {why}", highlight=False)
    if report.not_tried:
        errors.print(
            f"stopped at the first failure; {report.not_tried} sagas not tried "
            "(--keep-going skips bad sagas and goes on)",
            highlight=False,
        )
    if report.failed:
        raise typer.Exit(1)


def export(
    db: DbOption,
    out: Annotated[Path, typer.Option("--out", help="File to write (JSON Lines).")],
    force: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
) -> None:
    """Write every saga with its history to a JSON Lines file (a new file unless --force).

    Example: sagakit export --db sqlite:///sagas.db --out sagas.jsonl
    """
    _persistent(db, "--db")
    _new_file(out, "--out", force=force)

    async def main() -> int:
        count = 0
        async with opened(db) as store:
            # written beside the target and moved into place: a failed export never
            # leaves half a file where a good one was
            partial = out.with_name(out.name + ".partial")
            with partial.open("w", encoding="utf-8") as f:
                async for record, events in transfer.iter_sagas(store):
                    f.write(transfer.saga_line(record, events) + "\n")
                    count += 1
            partial.replace(out)
        return count

    console.print(f"exported {run_async(main)} sagas to {out}")


def read_export(file: Path) -> list[tuple[SagaRecord, list[SagaEvent]]]:
    """Read and check every line of an export; exit 2 naming the first bad line."""
    items: list[tuple[SagaRecord, list[SagaEvent]]] = []
    with file.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = transfer.decode_line(raw, number)
                if line.strip():
                    items.append(transfer.parse_line(line, number))
            except transfer.BadLine as e:
                fail(f"{file}: {e}; nothing was imported")
    return items


def import_(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A JSON Lines export.")],
    db: DbOption,
    keep_going: KeepGoing = False,
) -> None:
    """Import sagas from an export; checks every line first, imports nothing if one is bad.

    Each saga is written with its history in one transaction; the report says which were
    written, which were there already and which failed.
    Example: sagakit import sagas.jsonl --db postgresql://app@db/sagas
    """
    _persistent(db, "--db")
    items = read_export(file)

    async def main() -> ImportReport:
        async with opened(db, migrate=True) as store:
            return await transfer.import_sagas(store, items, keep_going=keep_going)

    _report(run_async(main), "imported")


def copy(
    source: Annotated[str, typer.Option("--from", help="Store URL to copy from.")],
    target: Annotated[str, typer.Option("--to", help="Store URL to copy to (schema created).")],
    keep_going: KeepGoing = False,
) -> None:
    """Copy every saga and its history between stores (e.g. SQLite to PostgreSQL); re-runnable.

    Example: sagakit copy --from sqlite:///sagas.db --to postgresql://app@db/sagas
    """
    _persistent(source, "--from")
    _persistent(target, "--to")

    async def main() -> ImportReport:
        async with opened(source) as src, opened(target, migrate=True) as dst:
            total = sum((await src.count_by_status()).values())
            with Progress(console=console) as bar:
                task = bar.add_task("copying sagas", total=total)
                items = [item async for item in transfer.iter_sagas(src)]
                return await transfer.import_sagas(
                    dst, items, progress=lambda: bar.advance(task), keep_going=keep_going
                )

    _report(run_async(main), "copied")


def _sqlite_file(db: str, option: str) -> tuple[str, str]:
    """Return (file path, saga table name) of an SQLite store URL, or explain the alternative."""
    store = open_store(db)
    if not isinstance(store, SqliteStore):
        fail(
            f"{option}: backup and restore copy SQLite stores; for PostgreSQL run "
            "pg_dump --format=custom --schema=SCHEMA DBNAME > sagas.dump (pg_restore to "
            "restore); for MariaDB run mariadb-dump DBNAME saga_instances saga_events "
            "saga_outbox saga_inbox sagakit_alembic_version > sagas.sql",
            code=1,
        )
    path = store.engine.url.database
    if not path or path == ":memory:":
        fail(f"{option} {db}: an in-memory SQLite database has no file to back up or restore")
    return path, store.tables.instances.name


def _count(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])


def backup(
    db: DbOption,
    out: Annotated[Path, typer.Option("--out", help="Backup file to write.")],
) -> None:
    """Write a consistent copy of an SQLite store while workers run (SQLite online backup).

    For PostgreSQL use: pg_dump --format=custom --schema=SCHEMA DBNAME > sagas.dump
    Example: sagakit backup --db sqlite:///sagas.db --out sagas-backup.db
    """
    source_path, table = _sqlite_file(db, "--db")
    if not Path(source_path).exists():
        fail(f"--db {db}: no database file at {source_path!r}")
    _new_file(out, "--out", force=False)

    def copy_file() -> int:
        source, target = sqlite3.connect(source_path), sqlite3.connect(out)
        try:
            source.backup(target, pages=1024)
            return _count(target, table)
        finally:
            target.close()
            source.close()

    try:
        count = asyncio.run(asyncio.to_thread(copy_file))
    except sqlite3.Error as e:
        fail(f"backup failed: {e}", code=1)
    console.print(f"backed up {count} sagas to {out}")


def restore(
    backup_file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="A file written by backup.")
    ],
    db: DbOption,
    force: Annotated[
        bool, typer.Option(help="Replace a database that already holds sagas.")
    ] = False,
) -> None:
    """Restore an SQLite store from a backup: checked first, then copied in one step.

    The backup must pass SQLite's integrity check; a target that holds sagas is replaced
    only with --force (stop its workers first).
    Example: sagakit restore sagas-backup.db --db sqlite:///sagas.db
    """
    target_path, table = _sqlite_file(db, "--db")

    def restore_file() -> tuple[int, int]:
        source = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)
        try:
            verdict = source.execute("PRAGMA integrity_check").fetchone()[0]
            if verdict != "ok":
                fail(f"{backup_file} fails SQLite's integrity check ({verdict}); nothing restored")
            try:
                expected = _count(source, table)
            except sqlite3.Error:
                fail(f"{backup_file} is not a sagakit backup (no {table} table); nothing restored")
            target = sqlite3.connect(target_path)
            try:
                try:
                    present = _count(target, table)
                except sqlite3.Error:
                    present = 0
                if present and not force:
                    fail(
                        f"--db {db} already holds {present} sagas; pass --force to replace "
                        "them with the backup (stop its workers first)"
                    )
                source.backup(target)
                restored = _count(target, table)
            finally:
                target.close()
        finally:
            source.close()
        return expected, restored

    try:
        expected, restored = restore_file()
    except sqlite3.DatabaseError as e:
        fail(f"{backup_file} cannot be read as an SQLite backup ({e}); nothing restored")
    if restored != expected:
        fail(f"restored {restored} sagas but the backup holds {expected}", code=1)
    console.print(f"restored {restored} sagas from {backup_file} to {target_path}")


def register_transfer_commands(app: typer.Typer) -> None:
    """Add the transfer commands to the ``sagakit`` app."""
    for command in (export, copy, backup, restore):
        app.command()(command)
    app.command("import")(import_)
