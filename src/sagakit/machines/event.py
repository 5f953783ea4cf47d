"""An event on its way to a state machine instance, and the key it belongs to."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigurationError
from .definition import StateMachine


@dataclass(slots=True)
class Event:
    """An event on its way to an instance.

    ``schedule_id``: fired by a schedule (applied only while that schedule stands).
    ``replay``: taken from the instance's ``held`` or ``faulted`` events (removed from
    them with the write that applies it).
    """

    name: str
    payload: dict[str, Any]
    message_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    schedule_id: str | None = None
    replay: str | None = None
    #: Look the id up in the inbox before running the handler (a caller gave the id, so
    #: it may come again); a fresh id is only checked by the write itself.
    checked: bool = False


def correlation_key(machine: StateMachine, payload: Mapping[str, Any]) -> str:
    """The business key of ``payload`` for ``machine``; ``ConfigurationError`` if absent."""
    value = payload.get(machine.correlate_by)
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise ConfigurationError(
            f"state machine {machine.name!r} correlates by {machine.correlate_by!r}: the "
            f"event's data needs {machine.correlate_by!r} as a non-empty string or an "
            f"integer, got {value!r:.60}"
        )
    return str(value)
