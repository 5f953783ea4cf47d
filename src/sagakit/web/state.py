"""What every request handler shares: the runtime, the settings and the metrics."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

from ..runtime import Runtime
from .settings import WebSettings

if TYPE_CHECKING:
    from ..observability.metrics import SagaMetrics


@dataclass(slots=True)
class WebState:
    """The runtime an app serves, with its settings; kept in ``app.state.sagakit``."""

    runtime: Runtime
    settings: WebSettings
    metrics: SagaMetrics | None = None
    #: Why ``/metrics`` cannot answer, when ``metrics`` is None.
    metrics_problem: str | None = None
    opened_here: bool = False
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def ready(self) -> Runtime:
        """Return the runtime, opening it first if nobody has (an app mounted elsewhere)."""
        if not _is_open(self.runtime):
            async with self._lock:
                if not _is_open(self.runtime):
                    await self.runtime.open()
                    self.opened_here = True
        return self.runtime

    async def close(self) -> None:
        """Close the runtime if this app opened it."""
        if self.opened_here:
            await self.runtime.close()
            self.opened_here = False


def _is_open(runtime: Runtime) -> bool:
    return runtime.is_open


def web_state(request: Request) -> WebState:
    """Return the ``WebState`` of the app serving ``request``."""
    state: WebState = request.app.state.sagakit
    return state


async def runtime_of(request: Request) -> Runtime:
    """Dependency: the opened runtime of the app serving ``request``."""
    return await web_state(request).ready()
