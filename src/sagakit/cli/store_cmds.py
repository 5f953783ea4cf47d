"""Commands that read or repair sagas in a store: migrate, list, show, and operator actions."""

from __future__ import annotations

import getpass
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from ..operator import Action, apply_action
from ..status import SagaStatus
from ..store.base import SagaStore
from ..store.records import SagaEvent, SagaQuery, SagaRecord, utcnow
from ..store.urls import open_store
from ..transfer import saga_line
from .common import DbOption, console, run_async, wrapping_table
from .durations import parse_duration


@asynccontextmanager
async def opened(db: str, *, migrate: bool = False) -> AsyncIterator[SagaStore]:
    """Open the store at ``db`` for one command."""
    store = open_store(db)
    await store.open(migrate=migrate)
    try:
        yield store
    finally:
        await store.close()


def _record_json(record: SagaRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "saga_type": record.saga_type,
        "status": record.status.value,
        "reason": record.reason.value if record.reason else None,
        "current_step": record.current_step,
        "attempt": record.attempt,
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
        "error": record.error_message,
    }


def migrate(db: DbOption) -> None:
    """Create or upgrade sagakit's tables.

    Example: sagakit migrate --db sqlite:///sagas.db
    """

    async def main() -> None:
        async with opened(db, migrate=True) as store:
            console.print(f"schema of {store.description} is up to date")

    run_async(main)


def list_sagas(
    db: DbOption,
    status: Annotated[
        list[SagaStatus] | None, typer.Option(case_sensitive=False, help="Only these statuses.")
    ] = None,
    saga_type: Annotated[str | None, typer.Option("--type", help="Only this saga type.")] = None,
    search: Annotated[str | None, typer.Option(help="Text the saga id contains.")] = None,
    older_than: Annotated[
        timedelta | None,
        typer.Option(
            parser=parse_duration, metavar="DURATION", help="Started before now-DURATION."
        ),
    ] = None,
    newer_than: Annotated[
        timedelta | None,
        typer.Option(parser=parse_duration, metavar="DURATION", help="Started after now-DURATION."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List sagas, newest first.

    Example: sagakit list --db sqlite:///sagas.db --status FAILED
    """

    async def main() -> None:
        async with opened(db) as store:
            records = await store.list(
                SagaQuery(
                    statuses=tuple(status) if status else None,
                    saga_type=saga_type,
                    id_contains=search,
                    created_before=utcnow() - older_than if older_than else None,
                    created_after=utcnow() - newer_than if newer_than else None,
                    limit=limit,
                )
            )
        if as_json:
            for record in records:
                print(json.dumps(_record_json(record)))
            return
        table = wrapping_table("id", "type", "status", "step", "attempt", "updated", "error")
        for r in records:
            status_text = r.status.value + (f" ({r.reason.value})" if r.reason else "")
            table.add_row(
                r.id,
                r.saga_type,
                status_text,
                r.current_step or "",
                str(r.attempt),
                r.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
                (r.error_message or "")[:60],
            )
        console.print(table)

    run_async(main)


def _timeline(events: list[SagaEvent]) -> Table:
    table = wrapping_table("seq", "at", "event", "step", "attempt", "ms", "detail")
    for e in events:
        detail = e.error["message"] if e.error else (e.reason or "")
        if e.actor:
            detail = f"{detail} by {e.actor}".strip()
        table.add_row(
            str(e.seq),
            e.at.strftime("%H:%M:%S.%f")[:-3],
            e.type,
            e.step or "",
            str(e.attempt or ""),
            f"{e.duration_ms:.1f}" if e.duration_ms is not None else "",
            detail,
        )
    return table


def show(
    saga_id: str,
    db: DbOption,
    as_json: Annotated[
        bool, typer.Option("--json", help="The saga and its events as JSON.")
    ] = False,
) -> None:
    """Show one saga: status, context, and its timeline of step attempts and compensations.

    Example: sagakit show order-42 --db sqlite:///sagas.db
    """

    async def main() -> None:
        async with opened(db) as store:
            record = await store.get(saga_id)
            if record is None:
                from ..errors import SagaNotFound

                raise SagaNotFound(f"no saga with id {saga_id!r} in {store.description}")
            events = await store.events(saga_id)
        if as_json:
            print(saga_line(record, events))
            return
        console.print(_record_json(record))
        console.print_json(json.dumps(record.context))
        console.print(_timeline(events))

    run_async(main)


def _action_command(action: Action) -> Callable[..., None]:
    def command(
        saga_id: str,
        db: DbOption,
        reason: Annotated[str | None, typer.Option(help="Why; kept in the audit trail.")] = None,
        actor: Annotated[str | None, typer.Option(help="Who; defaults to the login name.")] = None,
    ) -> None:
        async def main() -> None:
            async with opened(db) as store:
                record = await apply_action(
                    store, saga_id, action, actor=actor or getpass.getuser(), reason=reason
                )
            console.print(f"saga {record.id}: {action.value} done, now {record.status.value}")

        run_async(main)

    command.__doc__ = (
        f"{action.value.capitalize()} a saga ({_ACTION_HELP[action]}).\n\n"
        f"Example: sagakit {action.value} order-42 --db sqlite:///sagas.db --reason 'ticket 123'"
    )
    command.__name__ = action.value
    return command


_ACTION_HELP = {
    Action.RETRY: "resume a FAILED rollback, or run a waiting retry now",
    Action.COMPENSATE: "roll it back now",
    Action.CANCEL: "stop it and roll back",
    Action.PAUSE: "hold it until resumed",
    Action.RESUME: "hand a paused saga back to the workers",
}


def register_store_commands(app: typer.Typer) -> None:
    """Add the store commands to the ``sagakit`` app."""
    app.command()(migrate)
    app.command("list")(list_sagas)
    app.command()(show)
    for action in Action:
        app.command(action.value)(_action_command(action))
