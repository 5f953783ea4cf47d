"""``sagakit relay`` (publish the outbox) and ``sagakit outbox list|retry`` (see and repair it)."""

from __future__ import annotations

import json
import logging
from typing import Annotated

import typer

from ..errors import SagaError
from ..messaging.relay import Relay
from ..store.records import OutboxMessage, OutboxQuery, OutboxState, utcnow
from .common import DbOption, OptionalDbOption, console, fail, run_async, wrapping_table
from .loader import load_runtime
from .options import BrokerOption
from .signals import EarlyStop
from .store_cmds import opened

log = logging.getLogger("sagakit.relay")


def relay(
    db: OptionalDbOption = None,
    app: Annotated[
        str, typer.Option(help="'module:attribute' naming your Runtime (its store and broker).")
    ] = "",
    broker: BrokerOption = None,
    burst: Annotated[
        bool, typer.Option(help="Exit once no message is due (for tests and cron).")
    ] = False,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Messages claimed at once.")] = 100,
    max_attempts: Annotated[
        int, typer.Option(min=1, help="Attempts before a refused message is dead.")
    ] = 10,
    poll: Annotated[
        float,
        typer.Option(
            min=0.01,
            help="Longest pause between looks at the outbox, seconds (PostgreSQL wakes the "
            "relay at each commit; elsewhere this is how late another process's message is).",
        ),
    ] = 1.0,
    claim_seconds: Annotated[
        float,
        typer.Option(
            min=0.1,
            help="How long a claimed batch is this relay's; if it dies, others take the batch "
            "over after this.",
        ),
    ] = 30.0,
) -> None:
    """Publish outbox messages to the broker, without running sagas.

    Workers run a relay already; run this where no worker runs, or for more throughput.
    Example: sagakit relay --app shop.sagas:runtime
    """
    stopping = EarlyStop()
    try:
        if not app:
            fail("--app is required: 'module:attribute' naming your Runtime")
        try:
            runtime = load_runtime(app, db, default_workers=0, workers=0, broker=broker)
        except SagaError as e:
            fail(str(e))
        if runtime.broker is None:
            fail("no broker: give --broker URL, or Runtime(..., broker=URL) in your app")
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        logging.getLogger("alembic").setLevel(logging.WARNING)

        async def main() -> None:
            await runtime.open(background=False)
            assert runtime.broker is not None
            worker = Relay(
                runtime.store,
                runtime.broker,
                owner=runtime.owner,
                batch=batch,
                max_attempts=max_attempts,
                claim_seconds=claim_seconds,
                poll_interval=poll,
                hooks=runtime.hooks,
            )
            stopping.attach(worker.stop)
            log.info("relay %s: %s -> %s", runtime.owner, runtime.store.description, runtime.broker)
            try:
                counters = await worker.run(burst=burst)
            finally:
                await runtime.close()
            log.info("relay %s stopped: %s", runtime.owner, counters)
            if burst:
                console.print(counters)

        run_async(main)
    finally:
        stopping.restore()


outbox_app = typer.Typer(help="See and repair the messages sagas published.", no_args_is_help=True)


def _state(value: str | None) -> OutboxState | None:
    if value is None:
        return None
    try:
        return OutboxState(value.lower())
    except ValueError:
        valid = ", ".join(s.value for s in OutboxState)
        raise typer.BadParameter(f"{value!r} is not a state; use one of {valid}") from None


def _as_json(message: OutboxMessage) -> dict[str, object]:
    return {
        "id": message.id,
        "message_id": message.message_id,
        "saga_id": message.saga_id,
        "topic": message.topic,
        "state": message.state.value,
        "attempts": message.attempts,
        "created_at": message.created_at.isoformat(),
        "published_at": message.published_at.isoformat() if message.published_at else None,
        "last_error": message.last_error,
        "payload": message.payload,
    }


@outbox_app.command("list")
def list_messages(
    db: DbOption,
    state: Annotated[
        str | None, typer.Option(help="pending, published or dead.", metavar="STATE")
    ] = None,
    saga: Annotated[str | None, typer.Option(help="Only this saga's messages.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List outbox messages, newest first.

    Example: sagakit outbox list --db sqlite:///sagas.db --state dead
    """
    wanted = _state(state)

    async def main() -> None:
        async with opened(db) as store:
            found = await store.list_outbox(OutboxQuery(state=wanted, saga_id=saga, limit=limit))
        if as_json:
            for message in found:
                print(json.dumps(_as_json(message), ensure_ascii=False))
            return
        table = wrapping_table("id", "saga", "topic", "state", "attempts", "written", "last error")
        for m in found:
            table.add_row(
                str(m.id),
                m.saga_id,
                m.topic,
                m.state.value,
                str(m.attempts),
                m.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                m.last_error or "",
            )
        console.print(table if found else "no messages")

    run_async(main)


@outbox_app.command("retry")
def retry_messages(
    db: DbOption,
    ids: Annotated[list[int] | None, typer.Argument(help="Row ids (from `outbox list`).")] = None,
    all_dead: Annotated[bool, typer.Option("--all-dead", help="Every dead message.")] = False,
) -> None:
    """Send dead messages again: each becomes pending with a fresh attempt count.

    Example: sagakit outbox retry --db sqlite:///sagas.db 42 43
    """
    if not ids and not all_dead:
        fail(
            "name the messages to retry (ids from `sagakit outbox list --state dead`) or --all-dead"
        )

    async def main() -> None:
        async with opened(db) as store:
            wanted = list(ids or [])
            if all_dead:
                dead = await store.list_outbox(OutboxQuery(state=OutboxState.DEAD, limit=100_000))
                wanted += [m.id for m in dead if m.id is not None]
            changed = await store.retry_outbox(wanted, now=utcnow())
        console.print(f"{changed} message(s) will be sent again")
        if changed < len(set(wanted)):
            console.print(
                f"{len(set(wanted)) - changed} were not dead (or do not exist): left alone"
            )

    run_async(main)


def register_outbox_commands(app: typer.Typer) -> None:
    """Add ``relay`` and ``outbox`` to the ``sagakit`` command."""
    app.command()(relay)
    app.add_typer(outbox_app, name="outbox")
