"""Parse human durations such as ``90s``, ``15m``, ``1h``, ``30d`` for CLI options."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

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
    try:
        return timedelta(**{_UNITS[unit]: float(amount)})
    except OverflowError:
        raise typer.BadParameter(f"{text!r} is longer than sagakit can count back") from None


def ago(duration: timedelta | None, option: str) -> datetime | None:
    """Return now minus ``duration``; a duration reaching before the year 1 is refused."""
    if duration is None:
        return None
    try:
        return datetime.now(UTC) - duration
    except OverflowError:
        raise typer.BadParameter(
            f"{duration.days:,} days reaches before the year 1; use a shorter duration",
            param_hint=option,
        ) from None
