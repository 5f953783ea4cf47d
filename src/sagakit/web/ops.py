"""Endpoints for machines: ``/health`` for load balancers, ``/metrics`` for Prometheus."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request, Response

from ..admin import reports
from ..runtime import Runtime
from .schemas import HealthOut, Problem
from .security import ApiProblem, Reader
from .state import web_state

if TYPE_CHECKING:
    from ..observability.metrics import SagaMetrics

router = APIRouter(tags=["operations"])


@router.get(
    "/health",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "The store does not answer"}},
)
async def health(request: Request, response: Response) -> HealthOut:
    """Tell whether the store answers (200) or not (503), with stuck and failed counts."""
    state = web_state(request)
    try:
        runtime = await state.ready()
    except Exception as e:  # a store that cannot even open is unhealthy, not an error
        response.status_code = 503
        return HealthOut(
            ok=False,
            store=state.runtime.store.description,
            latency_ms=None,
            stuck=0,
            failed=0,
            pool=None,
            error=str(e),
            details={},
        )
    stuck_after = timedelta(seconds=state.settings.stuck_after)
    result = await reports.health(runtime.store, stuck_after=stuck_after)
    response.status_code = 200 if result.ok else 503
    return HealthOut.of(result)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition"},
        401: {"model": Problem, "description": "Reads need a token"},
        503: {"model": Problem, "description": "Metrics unavailable or store unreachable"},
    },
)
async def metrics(request: Request, _caller: Reader) -> Response:
    """Prometheus metrics: engine counters plus gauges refreshed from the database."""
    state = web_state(request)
    runtime = await state.ready()
    if state.metrics is None:
        raise ApiProblem(503, state.metrics_problem or "metrics are not available")
    from ..observability.metrics import CONTENT_TYPE

    await state.metrics.refresh(runtime.store, runtime.machines)
    return Response(content=state.metrics.render(), media_type=CONTENT_TYPE)


def resolve_metrics(
    runtime: Runtime, given: SagaMetrics | None = None
) -> tuple[SagaMetrics | None, str | None]:
    """Return the metrics to serve: ``given``, the runtime's own hook, or a new one.

    A new one is added to the runtime's hooks so that sagas this process runs are
    counted too. Return ``(None, why)`` when prometheus-client is not installed.
    """
    if given is not None:
        return given, None
    try:
        from prometheus_client import CollectorRegistry

        from ..observability.metrics import SagaMetrics
    except ImportError as e:
        return None, f"metrics need prometheus-client: pip install 'sagakit[metrics]' ({e})"
    for hook in runtime.hooks.hooks:
        if isinstance(hook, SagaMetrics):
            return hook, None
    created = SagaMetrics(registry=CollectorRegistry())
    runtime.hooks.hooks.append(created)
    return created, None
