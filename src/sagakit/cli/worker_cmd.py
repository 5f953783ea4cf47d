"""``sagakit worker``: run sagas from a store until stopped (SIGTERM/Ctrl-C is graceful)."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta
from typing import Annotated

import typer

from ..errors import StoreUnavailable
from ..leases import LeaseKeeper
from ..store.base import SagaStore
from ..store.urls import open_store
from ..worker import Worker, new_owner_id
from .common import DbOption, console, run_async
from .durations import parse_duration
from .loader import load_sagas

log = logging.getLogger("sagakit.worker")


async def open_patiently(store: SagaStore, *, migrate: bool) -> None:
    """Open the store, waiting with back-off while the database is unreachable."""
    wait = 0.5
    while True:
        try:
            await store.open(migrate=migrate)
            return
        except StoreUnavailable as e:
            log.warning("waiting for the database (%s); retrying in %.1fs", e, wait)
            await asyncio.sleep(wait)
            wait = min(wait * 2, 10.0)


def worker(
    db: DbOption,
    app: Annotated[
        str,
        typer.Option(
            help="Where your sagas are: 'module:attribute' naming a Runtime, Saga or list."
        ),
    ],
    concurrency: Annotated[int, typer.Option(min=1, help="Sagas run at once.")] = 16,
    lease: Annotated[
        float,
        typer.Option(
            min=0.1, help="Lease length in seconds; a crashed worker's sagas wait this long."
        ),
    ] = 30.0,
    poll: Annotated[
        float, typer.Option(min=0.01, help="Longest pause between polls, seconds.")
    ] = 1.0,
    burst: Annotated[
        bool, typer.Option(help="Exit once nothing is runnable (for tests and cron).")
    ] = False,
    migrate: Annotated[bool, typer.Option(help="Create/upgrade the schema on start.")] = True,
    archive_after: Annotated[
        timedelta | None,
        typer.Option(
            parser=parse_duration,
            metavar="DURATION",
            help="Archive COMPLETED/COMPENSATED sagas finished this long ago.",
        ),
    ] = None,
    delete_archived_after: Annotated[
        timedelta | None,
        typer.Option(
            parser=parse_duration, metavar="DURATION", help="Delete sagas archived this long ago."
        ),
    ] = None,
) -> None:
    """Claim runnable sagas and run them; resumes sagas any crashed worker left behind.

    Example: sagakit worker --db sqlite:///sagas.db --app shop.sagas:runtime
    """
    sagas = load_sagas(app)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    async def main() -> None:
        store = open_store(db)
        await open_patiently(store, migrate=migrate)
        owner = new_owner_id()
        leases = LeaseKeeper(store, owner, lease)
        runner = Worker(
            store,
            {s.name: s for s in sagas},
            leases=leases,
            concurrency=concurrency,
            poll_interval=poll,
            archive_after=archive_after,
            delete_archived_after=delete_archived_after,
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, runner.stop)
        log.info("worker %s on %s running %s", owner, store.description, ", ".join(runner.sagas))
        try:
            counters = await runner.run(burst=burst)
        finally:
            await leases.stop()
            await store.close()
        log.info("worker %s stopped: %s", owner, counters)
        if burst:
            console.print(counters)

    run_async(main)
