"""Metrics, traces and structured logs for sagakit, each a set of hooks on the engine lifecycle.

Pass them to the runtime: ``Runtime(url, sagas=[...], hooks=[SagaMetrics(), SagaTracing(),
SagaLogging()])``. Importing this package imports no optional dependency: ``SagaMetrics``
needs ``pip install sagakit[metrics]`` and ``SagaTracing`` ``pip install sagakit[otel]``,
and each is imported from its module the first time it is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .logging import JsonFormatter, SagaFieldsFilter, SagaLogging, json_logging

if TYPE_CHECKING:
    from .metrics import SagaMetrics
    from .tracing import SagaTracing

__all__ = [
    # hooks
    "SagaLogging",
    "SagaMetrics",
    "SagaTracing",
    # logging setup
    "JsonFormatter",
    "SagaFieldsFilter",
    "json_logging",
]

#: Names served from a module that needs an optional extra, imported on first use.
_LAZY = {"SagaMetrics": ".metrics", "SagaTracing": ".tracing"}


def __getattr__(name: str) -> Any:
    """Import ``SagaMetrics`` or ``SagaTracing`` when first used, not with this package."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
