"""Find the user's sagas from a ``module:attribute`` reference given on the command line."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable
from typing import Any

from ..definition import Saga
from ..errors import ConfigurationError
from ..runtime import Runtime


def load_sagas(reference: str) -> list[Saga]:
    """Import ``module:attr`` and return the sagas it names.

    ``attr`` may be a ``Runtime``, a ``Saga``, a list of sagas, or a function returning
    one of those.
    """
    module_name, _, attr = reference.partition(":")
    if not module_name or not attr:
        raise ConfigurationError(
            f"--app {reference!r} must look like 'package.module:attribute', e.g. 'shop.sagas:runtime'"
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` would, so local modules import
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigurationError(f"--app {reference!r}: cannot import {module_name!r}: {e}") from e
    try:
        target: Any = getattr(module, attr)
    except AttributeError:
        raise ConfigurationError(
            f"--app {reference!r}: module {module_name!r} has no attribute {attr!r}"
        ) from None
    if callable(target) and not isinstance(target, Saga | Runtime):
        target = target()
    if isinstance(target, Runtime):
        return list(target.sagas.values())
    if isinstance(target, Saga):
        return [target]
    if isinstance(target, Iterable) and not isinstance(target, str | bytes):
        items = list(target.values() if isinstance(target, dict) else target)
        if items and all(isinstance(s, Saga) for s in items):
            return items
    raise ConfigurationError(
        f"--app {reference!r} is a {type(target).__name__}; point it at a sagakit.Runtime, "
        "a Saga, or a list of Sagas"
    )
