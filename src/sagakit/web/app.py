"""``create_app(runtime)``: the HTTP API, dashboard, health and metrics as one FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from ..runtime import Runtime
from . import api, dashboard, events_api, ops
from .errors import SafeJSONResponse, install_error_handlers
from .limits import BodyLimit
from .settings import WebSettings, load_settings
from .state import WebState

if TYPE_CHECKING:
    from ..observability.metrics import SagaMetrics


def create_app(
    runtime: Runtime,
    metrics: SagaMetrics | None = None,
    *,
    settings: WebSettings | None = None,
    title: str = "sagakit",
) -> FastAPI:
    """Return an ASGI app serving ``runtime``: REST API, dashboard, ``/health``, ``/metrics``.

    Serve it with uvicorn, or mount it in your own app
    (``your_app.mount("/sagas", create_app(rt))``). The app opens the runtime on start
    (or on its first request, when mounted) unless it is open already, and closes it
    on shutdown only if it opened it. ``metrics`` is a
    ``sagakit.observability.metrics.SagaMetrics``; without one, the runtime's own is
    used, or a new one is added to its hooks. ``settings`` default to the
    ``SAGAKIT_API_*`` environment variables.
    """
    state = WebState(runtime=runtime, settings=settings or load_settings())
    state.metrics, state.metrics_problem = ops.resolve_metrics(runtime, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.ready()
        try:
            yield
        finally:
            await state.close()

    app = FastAPI(
        title=title,
        summary="Watch, start and repair durable sagas.",
        version=_version(),
        lifespan=lifespan,
        default_response_class=SafeJSONResponse,
    )
    app.state.sagakit = state
    app.state.sagakit_templates = dashboard.make_templates()
    install_error_handlers(app)
    app.include_router(api.router)
    app.include_router(events_api.router)
    app.include_router(ops.router)
    app.include_router(dashboard.router)
    app.add_middleware(BodyLimit, max_bytes=state.settings.max_body_bytes)
    app.mount("/static", StaticFiles(packages=[("sagakit.web", "static")]), name="static")
    return app


def _version() -> str:
    from .. import __version__

    return __version__
