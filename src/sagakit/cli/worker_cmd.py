"""``sagakit worker``: run sagas from a store until stopped (SIGTERM/Ctrl-C is graceful)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import SagaError, StoreUnavailable
from ..hooks import SagaHooks
from ..observability.logging import SagaLogging
from ..runtime import Runtime
from ..store.base import SagaStore
from .common import OptionalDbOption, console, fail, run_async
from .durations import parse_duration
from .loader import load_runtime
from .options import BrokerOption
from .signals import EarlyStop

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


async def refresh_forever(
    metrics: SagaMetrics, store: SagaStore, machines: Iterable[str] = (), every: float = 15.0
) -> None:
    """Keep the database-derived gauges (sagas in flight) current."""
    while True:
        try:
            await metrics.refresh(store, machines)
        except Exception as e:  # the next scrape shows stale gauges, the worker goes on
            log.warning("could not refresh metrics: %s", e)
        await asyncio.sleep(every)


async def open_patiently(
    runtime: Runtime, *, stopping: asyncio.Event, wait_for_db: float | None
) -> bool:
    """Open the runtime, waiting with back-off while the database is unreachable.

    Say so at once and at every retry; give up after ``wait_for_db`` seconds (``None``:
    wait for ever). Return False if asked to stop before the store could be opened.
    """
    loop = asyncio.get_running_loop()
    deadline = None if wait_for_db is None else loop.time() + wait_for_db
    wait = 0.5
    while not stopping.is_set():
        try:
            await runtime.open(background=False)
            return True
        except StoreUnavailable as e:
            if deadline is not None and loop.time() + wait > deadline:
                raise StoreUnavailable(
                    f"{e}; gave up after --wait-for-db {wait_for_db:g}s"
                ) from None
            log.warning("waiting for the database: %s; retrying in %.1fs", e, wait)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), wait)
            wait = min(wait * 2, 10.0)
    return False


def worker(
    db: OptionalDbOption = None,
    app: Annotated[
        str,
        typer.Option(
            help="Where your sagas are: 'module:attribute' naming a Runtime, Saga or list. "
            "A Runtime runs as configured (hooks, lease, retention, prefix, store); the "
            "options below override only what they name."
        ),
    ] = "",
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, help="Sagas run at once (default: the Runtime's workers, or 16)."),
    ] = None,
    lease: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            help="Lease length in seconds; a crashed worker's sagas wait this long "
            "(default: the Runtime's, or 30).",
        ),
    ] = None,
    poll: Annotated[
        float | None, typer.Option(min=0.01, help="Longest pause between polls, seconds.")
    ] = None,
    burst: Annotated[
        bool, typer.Option(help="Exit once nothing is runnable (for tests and cron).")
    ] = False,
    migrate: Annotated[
        bool | None, typer.Option(help="Create/upgrade the schema on start (default: yes).")
    ] = None,
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
    wait_for_db: Annotated[
        float | None,
        typer.Option(
            min=0,
            metavar="SECONDS",
            help="Give up if the database stays unreachable this long (default: keep "
            "waiting; 0: fail at once).",
        ),
    ] = None,
    connect_timeout: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            metavar="SECONDS",
            help="Seconds to wait for one connection (default 10; ?connect_timeout= in the "
            "URL wins).",
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Serve Prometheus /metrics on this port."),
    ] = None,
    json_logs: Annotated[bool, typer.Option(help="Log JSON lines with saga fields.")] = False,
    broker: BrokerOption = None,
) -> None:
    """Claim runnable sagas and run them; resumes sagas any crashed worker left behind.

    Example: sagakit worker --db sqlite:///sagas.db --app shop.sagas:runtime
    """
    # A pod scaled down just after it started gets SIGTERM before anything else is ready:
    # note it from the first moment, and stop gracefully once there is something to stop.
    stopping = EarlyStop()
    try:
        if not app:
            fail("--app is required: 'module:attribute' naming your Runtime, Saga or list of Sagas")
        if connect_timeout is not None:
            # read by every store the application builds, its own Runtime's included
            os.environ["SAGAKIT_CONNECT_TIMEOUT"] = str(connect_timeout)
        try:
            runtime = load_runtime(
                app,
                db,
                default_workers=16,
                workers=concurrency,
                lease_seconds=lease,
                poll_interval=poll,
                migrate=migrate,
                archive_after=archive_after,
                delete_archived_after=delete_archived_after,
                broker=broker,
            )
        except SagaError as e:
            fail(str(e))
        if not runtime.workers:
            runtime = runtime.replace(
                workers=16
            )  # an app's Runtime(workers=0) serves requests only
        if json_logs:
            from ..observability import json_logging

            json_logging(logging.INFO)
        else:
            logging.basicConfig(
                level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
            )
        logging.getLogger("alembic").setLevel(logging.WARNING)

        async def main() -> None:
            nonlocal runtime
            exporter: asyncio.Task[None] | None = None
            hooks: list[SagaHooks] = [*runtime.hooks.hooks, SagaLogging()]
            metrics = None
            if metrics_port is not None:
                metrics = serve_metrics(metrics_port)
                hooks.append(metrics)
            runtime = runtime.replace(hooks=hooks)
            event = stopping.attach(runtime.stop)
            if not await open_patiently(runtime, stopping=event, wait_for_db=wait_for_db):
                return
            if metrics is not None:
                exporter = asyncio.create_task(
                    refresh_forever(metrics, runtime.store, list(runtime.machines))
                )
            log.info(
                "worker %s on %s running %s",
                runtime.owner,
                runtime.store.description,
                ", ".join(runtime.sagas),
            )
            try:
                counters = await runtime.work(burst=burst)
            finally:
                if exporter is not None:
                    exporter.cancel()
                await runtime.close()
            log.info("worker %s stopped: %s", runtime.owner, counters)
            if burst:
                console.print(counters)

        run_async(main)
    finally:
        stopping.restore()
