"""Calling user step functions: async directly, sync in a worker thread, results checked."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Mapping
from typing import Any

from ..errors import NotSerializable
from ..plain import data_problem, describe_problem
from .step import StepFunction


@functools.lru_cache(maxsize=4096)
def _is_async(fn: StepFunction) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - async callable objects
    )


async def invoke(fn: StepFunction, ctx: Any, timeout: float | None) -> Any:
    """Run ``fn(ctx)``; a sync function runs in a thread so the engine stays responsive.

    On timeout a sync function's thread cannot be stopped: it runs on, its result ignored.
    """
    try:
        is_async = _is_async(fn)
    except TypeError:  # unhashable callable: no caching
        is_async = inspect.iscoroutinefunction(fn)
    call = fn(ctx) if is_async else asyncio.to_thread(fn, ctx)
    result = await (asyncio.wait_for(call, timeout) if timeout is not None else call)
    if inspect.isawaitable(result):  # a plain function that returned a coroutine
        result = await (asyncio.wait_for(result, timeout) if timeout is not None else result)
    return result


def ensure_json(values: Mapping[str, Any], where: str) -> None:
    """Raise ``NotSerializable`` naming the first part of ``values`` no store can hold."""
    problem = data_problem(values)
    if problem is not None:
        raise NotSerializable(describe_problem(where, problem))


def step_output(result: Any, where: str) -> dict[str, Any]:
    """Check a step's return value and return it as the dict to merge into the context."""
    if result is None:
        return {}
    if not isinstance(result, Mapping):
        kind = type(result).__name__
        article = "an" if kind[:1].lower() in "aeiou" else "a"
        raise NotSerializable(
            f"{where} returned {article} {kind}; return a dict (merged into the saga's "
            "context) or None"
        )
    output = dict(result)
    ensure_json(output, f"{where} result")
    return output
