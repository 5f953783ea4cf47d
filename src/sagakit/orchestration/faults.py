"""Fault injection for crash tests: kill this process right after a chosen checkpoint.

Set ``SAGAKIT_KILL_AFTER=<event type>:<n>`` (e.g. ``step_completed:2``) in a worker's
environment and the worker ``SIGKILL``s itself just after the n-th checkpoint that
recorded such an event has committed: the sharpest point to test recovery at.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable

ENV_VAR = "SAGAKIT_KILL_AFTER"


class KillAfter:
    """Counts committed events of one type and kills the process at the n-th."""

    def __init__(self, event_type: str, count: int) -> None:
        self.event_type = event_type
        self.remaining = count

    def committed(self, event_types: Iterable[str]) -> None:
        """Note a committed checkpoint's event types; die if this was the chosen one."""
        for event_type in event_types:
            if event_type == self.event_type:
                self.remaining -= 1
                if self.remaining <= 0:
                    os.kill(os.getpid(), signal.SIGKILL)


def from_environment() -> KillAfter | None:
    """Return the injector that ``SAGAKIT_KILL_AFTER`` asks for, if any."""
    spec = os.environ.get(ENV_VAR)
    if not spec:
        return None
    event_type, _, count = spec.partition(":")
    try:
        return KillAfter(event_type, int(count or "1"))
    except ValueError:
        raise ValueError(f"{ENV_VAR}={spec!r}: expected '<event type>:<count>'") from None
