"""``sagakit serve``: the HTTP API and dashboard, with an optional in-process worker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from ..errors import ConfigurationError, SagaError

if TYPE_CHECKING:
    from ..runtime import Runtime
from .common import OptionalDbOption, errors


def _fail(message: str, code: int = 1) -> NoReturn:
    errors.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def serve(
    db: OptionalDbOption = None,
    host: Annotated[
        str, typer.Option(help="Address to bind; beyond localhost a token must be configured.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8080,
    app: Annotated[
        str | None,
        typer.Option(
            help="Your sagas, as 'module:attribute' (a Runtime, Saga or list), so that "
            "POST /api/sagas can start them and workers here can run them."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0, help="Sagas run at once in this process (default: 4 with --app, else 0)."
        ),
    ] = None,
    migrate: Annotated[bool, typer.Option(help="Create/upgrade the schema on start.")] = True,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the REST API (/api, OpenAPI at /docs), the dashboard (/), /health and /metrics.

    Tokens come from SAGAKIT_API_TOKENS ('alice=s3cret,ci=...'); each token's name is
    recorded as the actor of the actions taken with it. SAGAKIT_API_READ_OPEN=true|false
    opens or closes reads (default: open only while no token is configured).

    Example: SAGAKIT_API_TOKENS=alice=s3cret sagakit serve --db sqlite:///sagas.db --app shop.sagas:runtime
    """
    try:
        import uvicorn

        from ..web import create_app
        from ..web.settings import is_local_host, load_settings
    except ImportError as e:
        _fail(f"sagakit serve needs the web extra: pip install 'sagakit[web]' ({e})")
    from ..runtime import Runtime
    from .loader import load_runtime

    try:
        settings = load_settings()
        if not is_local_host(host) and not settings.token_names():
            _fail(
                f"refusing to listen on {host}: no API token is configured, so anyone who can "
                "reach this address could read sagas. Set SAGAKIT_API_TOKENS='name=token' "
                "(comma-separated for several), or bind --host 127.0.0.1",
                code=2,
            )
        if app:
            runtime = load_runtime(app, db, default_workers=4, workers=workers, migrate=migrate)
        else:
            runtime = Runtime(db, workers=workers or 0, migrate=migrate)
        web = create_app(runtime, settings=settings)
    except SagaError as e:
        _fail(str(e))
    try:
        asyncio.run(_probe(runtime))
    except SagaError as e:
        # the app's lifespan would say the same with a traceback: say it once, plainly
        _fail(str(e), code=2 if isinstance(e, ConfigurationError) else 1)
    mode = "open" if settings.reads_open else "token required"
    errors.print(
        f"sagakit serving {runtime.store.description} on http://{host}:{port} "
        f"(reads {mode}; {len(settings.token_names())} token(s); workers {runtime.workers})",
        highlight=False,
    )
    server = _graceful_server()(uvicorn.Config(web, host=host, port=port, log_level=log_level))
    server.run()


async def _probe(runtime: Runtime) -> None:
    """Open and close the store once, so that a bad URL or password fails before serving."""
    probe = runtime.replace(workers=0)
    await probe.open()
    await probe.close()


def _graceful_server() -> type:
    import uvicorn

    class GracefulServer(uvicorn.Server):
        """uvicorn's server, exiting 0 after a graceful shutdown on SIGTERM or Ctrl-C.

        uvicorn re-raises the signal it caught once it has shut down, so the process would
        end "killed by SIGTERM" although nothing went wrong; orchestrators count that as a
        failure.
        """

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                yield
                self._captured_signals.clear()

    return GracefulServer
