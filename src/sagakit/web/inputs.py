"""Checks on what clients send: text the stores can hold, times, ages and list cursors.

Every failure is an ``InputError`` naming the field, which the API answers with a 422.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from ..plain import data_problem, text_problem
from ..store.records import SagaRecord, utcnow


class InputError(ValueError):
    """A request value is unusable; ``field`` says which (``query.cursor``, ``body.context``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def check_text(value: str, field: str) -> str:
    """Return ``value`` if every store can hold it: no NUL, valid UTF-8 (no lone surrogates)."""
    why = text_problem(value)
    if why is not None:
        raise InputError(field, f"{field} {why}")
    return value


def check_json(value: Any, field: str) -> None:
    """Check a JSON value with the rule every boundary uses (``sagakit.plain``)."""
    problem = data_problem(value)
    if problem is not None:
        path, why = problem
        where = f"{field}.{path}" if path and not path.startswith("[") else field + path
        raise InputError(where, f"{where} {why}")


def as_utc(value: datetime, field: str) -> datetime:
    """Return ``value`` as aware UTC (naive means UTC); refuse times UTC cannot hold."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise InputError(field, f"{field} is out of range once converted to UTC") from None


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d{1,9})\s*([smhdw])\s*$")


def age_cutoff(text: str, field: str, *, now: datetime | None = None) -> datetime:
    """Return ``now`` minus a duration written ``90s``, ``15m``, ``2h``, ``7d`` or ``1w``."""
    match = _DURATION.match(text)
    if match is None:
        raise InputError(
            field, f"{field} must be a number and a unit s, m, h, d or w, e.g. 15m or 2d"
        )
    try:
        return (now or utcnow()) - timedelta(seconds=int(match[1]) * _UNITS[match[2]])
    except OverflowError:
        raise InputError(field, f"{field} reaches before the year 1") from None


def encode_cursor(record: SagaRecord) -> str:
    """Return an opaque token for the page that follows ``record`` (newest first)."""
    raw = json.dumps([record.created_at.isoformat(), record.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str, field: str = "query.cursor") -> tuple[datetime, str]:
    """Return the ``(created_at, id)`` keyset a token from ``encode_cursor`` stands for."""
    bad = InputError(field, f"{field} is not a cursor this API returned; start without it")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        at, saga_id = json.loads(raw)
        if not isinstance(at, str) or not isinstance(saga_id, str):
            raise bad
        return as_utc(datetime.fromisoformat(at), field), check_text(saga_id, field)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, RecursionError):
        raise bad from None
