"""Events for state machines from the command line: ``send`` and ``redeliver``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from ..errors import SagaError
from ..outcomes import Delivery
from ..runtime import Runtime
from .common import OptionalDbOption, console, fail, run_async, wrapping_table
from .loader import load_runtime

AppOption = Annotated[
    str,
    typer.Option(
        help="Where your state machines are: 'module:attribute' naming a Runtime or a list "
        "of sagas and state machines (their handlers run in this command)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object per result.")]


def _runtime(app: str, db: str | None) -> Runtime:
    if not app:
        fail("--app is required: 'module:attribute' naming your Runtime or state machines")
    try:
        return load_runtime(app, db, default_workers=0, workers=0)
    except SagaError as e:
        fail(str(e))


def _report(deliveries: list[Delivery], as_json: bool) -> None:
    if as_json:
        for d in deliveries:
            print(
                json.dumps(
                    {
                        "instance": d.instance_id,
                        "outcome": d.outcome.value,
                        "state": d.state,
                        "error": d.error,
                    }
                )
            )
    else:
        table = wrapping_table("instance", "outcome", "state", "detail")
        for d in deliveries:
            moved = f"{d.previous or '(new)'} -> {d.state}" if d.applied else (d.state or "")
            table.add_row(d.instance_id, d.outcome.value, moved, d.error or "")
        console.print(table)
    if any(d.outcome.is_fault for d in deliveries):
        raise typer.Exit(1)


def send(
    event: Annotated[str, typer.Argument(help="The event's name, e.g. OrderSubmitted.")],
    data: Annotated[
        str, typer.Option(help='The event\'s data as a JSON object, e.g. \'{"order_id": "o-1"}\'.')
    ] = "{}",
    message_id: Annotated[
        str | None,
        typer.Option(help="The message's id: sending the same id again applies it once."),
    ] = None,
    saga_id: Annotated[
        str | None, typer.Option(help="Send to this one instance instead of by its key.")
    ] = None,
    db: OptionalDbOption = None,
    app: AppOption = "",
    as_json: JsonOption = False,
) -> None:
    """Send an event to the state machines that take it; print what each did with it.

    Exits 1 when an event was not applied and was not meant to be kept (unhandled in its
    state, no instance, or a handler that failed).

    Example: sagakit send OrderSubmitted --data '{"order_id": "o-1", "total": 10}'
    --message-id m-1 --app shop.orders:runtime
    """
    try:
        payload: Any = json.loads(data)
    except json.JSONDecodeError as e:
        fail(f"--data is not JSON ({e.msg} at character {e.pos}); give a JSON object")
    if not isinstance(payload, dict):
        fail(f"--data must be a JSON object, got {type(payload).__name__}")
    runtime = _runtime(app, db)

    async def main() -> list[Delivery]:
        async with runtime:
            result = await runtime.send(event, payload, message_id=message_id, saga_id=saga_id)
        return list(result.deliveries)

    _report(run_async(main), as_json)


def redeliver(
    instance: Annotated[str, typer.Argument(help="The instance id, e.g. order:o-1.")],
    db: OptionalDbOption = None,
    app: AppOption = "",
    as_json: JsonOption = False,
) -> None:
    """Apply an instance's faulted events again (after the handler was fixed).

    Example: sagakit redeliver order:o-1 --app shop.orders:runtime
    """
    runtime = _runtime(app, db)

    async def main() -> list[Delivery]:
        async with runtime:
            return await runtime.redeliver(instance)

    deliveries = run_async(main)
    if not deliveries:
        console.print(f"{instance} has no faulted events")
        return
    _report(deliveries, as_json)


def register_event_commands(app: typer.Typer) -> None:
    """Add ``send`` and ``redeliver`` to the ``sagakit`` app."""
    app.command()(send)
    app.command()(redeliver)
