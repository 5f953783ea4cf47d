"""Find the user's sagas from a ``module:attribute`` reference given on the command line."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable
from typing import Any

from ..errors import ConfigurationError
from ..machines.definition import StateMachine
from ..orchestration.definition import Saga
from ..orchestration.step import Step
from ..runtime import Runtime


def load_runtime(
    reference: str, db: str | None, *, default_workers: int, **overrides: Any
) -> Runtime:
    """Return the Runtime that ``--app`` names, with the flags the user gave applied.

    A Runtime in the application keeps its own hooks, lease, retention and prefix; only the
    options given on the command line (``overrides`` that are not ``None``, and ``--db``)
    replace its settings. Sagas alone get a Runtime on ``--db`` running
    ``default_workers`` at once.
    """
    target = _load(reference)
    given = {name: value for name, value in overrides.items() if value is not None}
    if isinstance(target, Runtime):
        if db is not None:
            given["url"] = db
        return target.replace(**given)
    if db is None:
        raise ConfigurationError(
            f"--app {reference!r} names sagas but no store: pass --db URL (or set "
            "SAGAKIT_DATABASE_URL), or point --app at a Runtime built with its URL"
        )
    given.setdefault("workers", default_workers)
    return Runtime(db, sagas=_sagas(reference, target), **given)


def _load(reference: str) -> Any:
    """Import ``module:attr`` and return it (called, if it is a factory function)."""
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
        names = [n for n in vars(module) if isinstance(vars(module)[n], Saga | Runtime)]
        found = f"; it has {', '.join(sorted(names))}" if names else ""
        raise ConfigurationError(
            f"--app {reference!r}: module {module_name!r} has no attribute {attr!r}{found}"
        ) from None
    if isinstance(target, Step):
        raise ConfigurationError(
            f"--app {reference!r} is the step {target.name!r}, not a saga; point it at the "
            "Saga that holds the step, a list of Sagas, or a sagakit.Runtime"
        )
    if callable(target) and not isinstance(target, Saga | StateMachine | Runtime):
        try:
            target = target()
        except TypeError as e:
            raise ConfigurationError(
                f"--app {reference!r} is a function that needs arguments ({e}); point it at "
                "a sagakit.Runtime, a Saga, a list of Sagas, or a function without arguments"
            ) from None
    return target


def _sagas(reference: str, target: Any) -> list[Saga | StateMachine]:
    if isinstance(target, Saga | StateMachine):
        return [target]
    if isinstance(target, Iterable) and not isinstance(target, str | bytes):
        items = list(target.values() if isinstance(target, dict) else target)
        if items and all(isinstance(s, Saga | StateMachine) for s in items):
            return items
    raise ConfigurationError(
        f"--app {reference!r} is a {type(target).__name__}; point it at a sagakit.Runtime, "
        "a Saga, a StateMachine, or a list of them"
    )
