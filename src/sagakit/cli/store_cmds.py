"""Commands that read or repair sagas in a store: migrate, list, show, and operator actions."""

from __future__ import annotations

import dataclasses
import getpass
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from ..admin.operator import Action, apply_action
from ..admin.transfer import saga_line
from ..history import EventType
from ..status import Reason, SagaStatus
from ..store.base import SagaStore
from ..store.records import EventQuery, SagaEvent, SagaQuery, SagaRecord
from ..store.urls import open_store
from .common import DbOption, console, fail, run_async, wrapping_table
from .durations import ago, parse_duration


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


def parse_statuses(values: list[str] | None) -> tuple[SagaStatus, ...] | None:
    """Read ``--status`` values; a reason given as a status says how to filter by it."""
    if not values:
        return None
    statuses = []
    for value in values:
        try:
            statuses.append(SagaStatus(value.upper()))
        except ValueError:
            valid = ", ".join(s.value for s in SagaStatus)
            if value.lower() in {r.value for r in Reason}:
                raise typer.BadParameter(
                    f"{value!r} is a reason, not a status: a {value} saga is COMPENSATED (or "
                    f"FAILED) with reason {value.lower()}; use --reason {value.lower()}",
                    param_hint="--status",
                ) from None
            raise typer.BadParameter(
                f"{value!r} is not a status; use one of: {valid}", param_hint="--status"
            ) from None
    return tuple(statuses)


def parse_reasons(values: list[str] | None) -> tuple[Reason, ...] | None:
    """Read ``--reason`` values (error, timeout, cancelled, operator, ...)."""
    if not values:
        return None
    try:
        return tuple(Reason(value.lower()) for value in values)
    except ValueError:
        valid = ", ".join(r.value for r in Reason)
        raise typer.BadParameter(
            f"{values!r} holds an unknown reason; use: {valid}", param_hint="--reason"
        ) from None


def _kind(kind: str | None) -> str | None:
    if kind not in (None, "orchestrated", "state_machine"):
        fail(f"--kind must be orchestrated or state_machine, got {kind!r}")
    return kind


def list_sagas(
    db: DbOption,
    status: Annotated[
        list[str] | None,
        typer.Option(help="Only these statuses: PENDING, RUNNING, COMPLETED, COMPENSATED..."),
    ] = None,
    reason: Annotated[
        list[str] | None,
        typer.Option(help="Only these reasons: error, timeout, cancelled, compensate, operator."),
    ] = None,
    actor: Annotated[str | None, typer.Option(help="Only sagas started by this actor.")] = None,
    saga_type: Annotated[str | None, typer.Option("--type", help="Only this saga type.")] = None,
    search: Annotated[str | None, typer.Option(help="Text the saga id contains.")] = None,
    kind: Annotated[
        str | None,
        typer.Option(help="Only this kind: orchestrated or state_machine."),
    ] = None,
    state: Annotated[
        str | None,
        typer.Option(help="Only state machine instances in this state (or sagas at this step)."),
    ] = None,
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
    finished_since: Annotated[
        timedelta | None,
        typer.Option(
            parser=parse_duration, metavar="DURATION", help="Finished after now-DURATION."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List sagas, newest first.

    --older-than and --newer-than are about when a saga was started; --finished-since
    about when it ended.

    Example: sagakit list --db sqlite:///sagas.db --status COMPENSATED --reason error
    """
    query = SagaQuery(
        statuses=parse_statuses(status),
        reasons=parse_reasons(reason),
        started_by=actor,
        saga_type=saga_type,
        id_contains=search,
        kind=_kind(kind),
        state=state,
        created_before=ago(older_than, "--older-than"),
        created_after=ago(newer_than, "--newer-than"),
        finished_after=ago(finished_since, "--finished-since"),
        limit=limit,
    )

    async def main() -> None:
        async with opened(db) as store:
            records = await store.list(query)
        if as_json:
            for record in records:
                print(json.dumps(_record_json(record)))
            return
        table = wrapping_table("id", "type", "status", "step/state", "attempt", "updated", "error")
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
        if e.type == EventType.EVENT_APPLIED and e.output:  # a state machine's transition
            detail = f"{e.output.get('from') or '(new)'} -> {e.output.get('to')}"
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


def _event_json(event: SagaEvent) -> dict[str, Any]:
    return {**dataclasses.asdict(event), "at": event.at.isoformat()}


def events(
    db: DbOption,
    event_type: Annotated[
        list[str] | None,
        typer.Option(
            "--type",
            help="Only these event types, e.g. step_failed, compensation_started, operator_retry.",
        ),
    ] = None,
    since: Annotated[
        timedelta | None,
        typer.Option(parser=parse_duration, metavar="DURATION", help="Only the last DURATION."),
    ] = None,
    saga_type: Annotated[str | None, typer.Option(help="Only events of this saga type.")] = None,
    saga: Annotated[str | None, typer.Option(help="Only events of this saga id.")] = None,
    actor: Annotated[str | None, typer.Option(help="Only events caused by this actor.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """The audit trail across sagas, newest first: failures, rollbacks, operator actions.

    Examples:
      sagakit events --db sqlite:///sagas.db --type step_failed --since 24h
      sagakit events --db sqlite:///sagas.db --type compensation_started --actor alice --json
    """
    query = EventQuery(
        types=tuple(event_type) if event_type else None,
        since=ago(since, "--since"),
        saga_type=saga_type,
        saga_id=saga,
        actor=actor,
        limit=limit,
    )

    async def main() -> list[SagaEvent]:
        async with opened(db) as store:
            return await store.find_events(query)

    found = run_async(main)
    if as_json:
        for event in found:
            print(json.dumps(_event_json(event), ensure_ascii=False))
        return
    table = wrapping_table("at", "saga", "event", "step", "attempt", "actor", "detail")
    for e in found:
        table.add_row(
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            e.saga_id,
            e.type,
            e.step or "",
            str(e.attempt or ""),
            e.actor or "",
            (e.error or {}).get("message", "") or (e.reason or ""),
        )
    console.print(table)
    console.print(f"{len(found)} events")


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
    app.command()(events)
    for action in Action:
        app.command(action.value)(_action_command(action))
