"""``sagakit worker``: run sagas from a store until stopped (SIGTERM/Ctrl-C is graceful)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import StoreUnavailable
from ..hooks import HookChain, SagaHooks
from ..leases import LeaseKeeper
from ..observability.logging import SagaLogging
from ..store.base import SagaStore
from ..store.urls import open_store
from ..worker import Worker, new_owner_id
from .common import DbOption, console, run_async
from .durations import parse_duration
from .loader import load_sagas

if TYPE_CHECKING:
    from ..observability.metrics import SagaMetrics

log = logging.getLogger("sagakit.worker")


def serve_metrics(port: int) -> SagaMetrics:
    """Start a Prometheus endpoint on ``port`` for this worker's metrics."""
    from prometheus_client import start_http_server

    from ..observability.metrics import SagaMetrics

    metrics = SagaMetrics()
    start_http_server(port, addr="0.0.0.0", registry=metrics.registry)
    log.info("metrics on http://0.0.0.0:%d/metrics", port)
    return metrics


async def refresh_forever(metrics: SagaMetrics, store: SagaStore, every: float = 15.0) -> None:
    """Keep the database-derived gauges (sagas in flight) current."""
    while True:
        try:
            await metrics.refresh(store)
        except Exception as e:  # the next scrape shows stale gauges, the worker goes on
            log.warning("could not refresh metrics: %s", e)
        await asyncio.sleep(every)


async def open_patiently(store: SagaStore, *, migrate: bool, stopping: asyncio.Event) -> bool:
    """Open the store, waiting with back-off while the database is unreachable.

    Return False if asked to stop before the store could be opened.
    """
    wait = 0.5
    while not stopping.is_set():
        try:
            await store.open(migrate=migrate)
            return True
        except StoreUnavailable as e:
            log.warning("waiting for the database (%s); retrying in %.1fs", e, wait)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), wait)
            wait = min(wait * 2, 10.0)
    return False


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
    metrics_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Serve Prometheus /metrics on this port."),
    ] = None,
    json_logs: Annotated[bool, typer.Option(help="Log JSON lines with saga fields.")] = False,
) -> None:
    """Claim runnable sagas and run them; resumes sagas any crashed worker left behind.

    Example: sagakit worker --db sqlite:///sagas.db --app shop.sagas:runtime
    """
    sagas = load_sagas(app)
    if json_logs:
        from ..observability import json_logging

        json_logging(logging.INFO)
    else:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    logging.getLogger("alembic").setLevel(logging.WARNING)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        runner: Worker | None = None

        def stop() -> None:  # graceful from the first moment, even while starting up
            stopping.set()
            if runner is not None:
                runner.stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        store = open_store(db)
        if not await open_patiently(store, migrate=migrate, stopping=stopping):
            return
        owner = new_owner_id()
        leases = LeaseKeeper(store, owner, lease)
        hooks: list[SagaHooks] = [SagaLogging()]
        exporter: asyncio.Task[None] | None = None
        if metrics_port is not None:
            metrics = serve_metrics(metrics_port)
            hooks.append(metrics)
            exporter = asyncio.create_task(refresh_forever(metrics, store))
        runner = Worker(
            store,
            {s.name: s for s in sagas},
            leases=leases,
            hooks=HookChain(hooks),
            concurrency=concurrency,
            poll_interval=poll,
            archive_after=archive_after,
            delete_archived_after=delete_archived_after,
        )
        if stopping.is_set():
            runner.stop()
        log.info("worker %s on %s running %s", owner, store.description, ", ".join(runner.sagas))
        try:
            counters = await runner.run(burst=burst)
        finally:
            if exporter is not None:
                exporter.cancel()
            await leases.stop()
            await store.close()
        log.info("worker %s stopped: %s", owner, counters)
        if burst:
            console.print(counters)

    run_async(main)
