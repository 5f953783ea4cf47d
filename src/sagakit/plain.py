"""What every store can hold: plain JSON data with text that is valid UTF-8 and has no NUL.

One rule, applied at every boundary (``rt.start``/``rt.run``, step results, published
messages, import, the HTTP API and the CLI), so the same input has the same outcome on
SQLite, PostgreSQL and MariaDB: PostgreSQL cannot store NUL in text or JSONB, no store
can encode a lone surrogate as UTF-8, and JSON has no NaN or Infinity.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .errors import ConfigurationError

#: Deeper values are refused: they cost the JSON encoders their recursion limit.
MAX_DEPTH = 64
#: Integers beyond a signed 64-bit range are refused: not every store and client keeps them.
MAX_INT = 2**63 - 1

PLAIN_DATA = "plain data (str, int, float, bool, None, list, dict)"


def text_problem(value: str) -> str | None:
    """Say why ``value`` cannot be stored as text, or return ``None`` if it can."""
    if "\x00" in value:
        return "contains a NUL character (\\x00), which PostgreSQL cannot store; remove it"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        return (
            f"is not valid UTF-8 text (a lone surrogate {value[e.start]!r} at position "
            f"{e.start}); send text encoded as UTF-8"
        )
    return None


def check_texts(what: str, **values: str | None) -> None:
    """Raise ``ConfigurationError`` naming the first of ``values`` no store can hold."""
    for name, value in values.items():
        why = text_problem(value) if isinstance(value, str) else None
        if why is not None:
            raise ConfigurationError(f"{what}: {name} {why}" if what else f"{name} {why}")


def _key_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def data_problem(value: Any) -> tuple[str, str] | None:
    """Return ``(path, why)`` for the first part of ``value`` no store can hold, or ``None``.

    ``path`` reads like ``order.items[2].name`` (empty for ``value`` itself).
    """
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            return path, f"is nested more than {MAX_DEPTH} levels deep; flatten it"
        if item is None or isinstance(item, bool):
            continue
        if isinstance(item, str):
            why = text_problem(item)
            if why is not None:
                return path, why
        elif isinstance(item, int):
            if abs(item) > MAX_INT:
                return path, f"is an integer beyond ±{MAX_INT}; store it as a string"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return path, f"is {item}, which JSON cannot hold; use None or a number"
        elif isinstance(item, Mapping):
            for key, child in item.items():
                if not isinstance(key, str):
                    return (
                        _key_path(path, repr(key)),
                        f"is a {type(key).__name__} key; keys must be strings",
                    )
                why = text_problem(key)
                if why is not None:
                    return _key_path(path, repr(key)), f"is a key that {why}"
                stack.append((child, _key_path(path, key), depth + 1))
        elif isinstance(item, list | tuple):
            for index, child in enumerate(item):
                stack.append((child, f"{path}[{index}]", depth + 1))
        else:
            return path, (
                f"is a {type(item).__name__}, which cannot be stored as JSON; use "
                f"{PLAIN_DATA}, e.g. str(value) or value.isoformat()"
            )
    return None


def describe_problem(where: str, problem: tuple[str, str]) -> str:
    """Render ``data_problem``'s answer as one sentence that starts with ``where``."""
    path, why = problem
    return f"{where}: value of {path!r} {why}" if path else f"{where} {why}"
