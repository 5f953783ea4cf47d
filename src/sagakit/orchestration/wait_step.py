"""The wait step's definition: ``saga.wait_for(event, match=..., timeout=...)``.

How it runs is in ``waits.py`` and ``wait_engine.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ..errors import DefinitionError
from .step import _UNBOUND, Step, StepFunction


def _never_called(ctx: Any) -> None:
    raise AssertionError("a wait step is run by the engine, not called")


@dataclass(slots=True, eq=False, init=False)
class WaitStep(Step):
    """A step that parks the saga until ``event`` arrives (or ``wait_timeout`` passes)."""

    event: str = ""
    match: str | None = None
    wait_timeout: float | None = None
    on_timeout: StepFunction | None = field(default=None, repr=False)

    def __init__(
        self,
        event: str,
        *,
        match: str | None = None,
        timeout: float | timedelta | None = None,
        on_timeout: StepFunction | None = None,
        name: str | None = None,
    ) -> None:
        if not isinstance(event, str) or not event.strip() or len(event) > 100:
            raise DefinitionError(f"wait_for: the event must be a name, got {event!r}")
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        if seconds is not None and (
            isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0
        ):
            raise DefinitionError(
                f"wait_for({event!r}): timeout must be a positive number of seconds, a "
                f"timedelta or None, got {timeout!r}"
            )
        if match is not None and (not isinstance(match, str) or not match):
            raise DefinitionError(f"wait_for({event!r}): match must be a context key")
        Step.__init__(self, name or f"wait_for_{event}", _never_called)
        self.event, self.match, self.wait_timeout = event, match, seconds
        self.on_timeout = on_timeout
        self._saga = _UNBOUND
