"""Operator commands: stats, stuck, health, cleanup, validate."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Annotated

import typer

from ..admin import reports
from ..errors import SagaError
from ..messaging.retention import MESSAGE_RETENTION, purge_messages
from ..status import SagaStatus
from ..store.base import SagaStore
from ..store.records import SagaQuery, SagaRecord, utcnow
from ..store.urls import open_store, redact
from .common import DbOption, console, run_async, wrapping_table
from .durations import ago, parse_duration
from .store_cmds import opened

Duration = Annotated[timedelta, typer.Option(parser=parse_duration, metavar="DURATION")]


def stats(
    db: DbOption, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Counts by status, type and reason, success rate, and p50/p95 saga durations.

    Cancelled sagas are not counted as failures in the success rate.

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
        for status_name, reasons in sorted(summary.by_reason.items()):
            shown = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items()))
            console.print(f"{status_name} by reason: {shown}")
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
    ago(older_than, "--older-than")

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
    messages_older_than: Annotated[
        timedelta,
        typer.Option(
            parser=parse_duration,
            metavar="DURATION",
            help="Delete outbox messages published, and inbox marks recorded, this long ago "
            "(unpublished and dead messages are kept).",
        ),
    ] = MESSAGE_RETENTION,
) -> None:
    """Delete sagas archived longer ago than --archived-older-than (FAILED ones never are),
    and delivered messages older than --messages-older-than.

    Example: sagakit cleanup --db sqlite:///sagas.db --archived-older-than 30d --dry-run
    """
    ago(archived_older_than, "--archived-older-than")
    ago(archive_finished_older_than, "--archive-finished-older-than")
    ago(messages_older_than, "--messages-older-than")

    async def main() -> None:
        now = utcnow()
        async with opened(db) as store:
            if archive_finished_older_than is not None and not dry_run:
                n = await store.archive(finished_before=now - archive_finished_older_than, now=now)
                console.print(f"archived {n} finished sagas")
            n = await store.purge(archived_before=now - archived_older_than, dry_run=dry_run)
            if not dry_run:
                published, marks = await purge_messages(store, before=now - messages_older_than)
        verb = "would delete" if dry_run else "deleted"
        console.print(f"{verb} {n} sagas archived more than {archived_older_than} ago")
        if not dry_run:
            console.print(
                f"deleted {published} published messages and {marks} inbox marks older than "
                f"{messages_older_than}"
            )

    run_async(main)


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
    revision = await store.schema_revision()
    return revision if revision is not None else "n/a (no schema)"


def register_ops_commands(app: typer.Typer) -> None:
    """Add the operator commands to the ``sagakit`` app."""
    for command in (stats, stuck, health, cleanup, validate):
        app.command()(command)
