"""Parse human durations such as ``90s``, ``15m``, ``1h``, ``30d`` for CLI options."""

from __future__ import annotations

import re
from datetime import timedelta

import typer

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration(text: str | timedelta) -> timedelta:
    """Return the ``timedelta`` that ``text`` names; a Typer error naming it otherwise."""
    if isinstance(text, timedelta):  # a default value, already parsed
        return text
    match = _PATTERN.match(text)
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a duration; use e.g. 90s, 15m, 1h, 30d or 2w")
    amount, unit = match.groups()
    return timedelta(**{_UNITS[unit]: float(amount)})
