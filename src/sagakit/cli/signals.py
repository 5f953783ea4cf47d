"""Graceful SIGTERM/SIGINT from a command's first moment, before its event loop exists."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from types import FrameType


class EarlyStop:
    """Notes SIGTERM/SIGINT at once; later hands them to the event loop as a stop request.

    An orchestrator that scales down a pod that has just started sends SIGTERM while the
    application is still importing. Without a handler the process dies by the signal;
    with this one it stops as soon as it can, having claimed nothing or released it.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.requested = False
        self._event: asyncio.Event | None = None
        self._on_stop: Callable[[], None] | None = None
        self._previous = {sig: signal.signal(sig, self._noted) for sig in self.SIGNALS}

    def _noted(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True

    def restore(self) -> None:
        """Put back the handlers that were there before (the command is over)."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def attach(self, on_stop: Callable[[], None]) -> asyncio.Event:
        """Route the signals through the running loop to ``on_stop``; return the stop event.

        The event is already set if a signal came before.
        """
        loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        self._on_stop = on_stop

        def stop() -> None:
            assert self._event is not None and self._on_stop is not None
            self._event.set()
            self._on_stop()

        for sig in self.SIGNALS:
            loop.add_signal_handler(sig, stop)
        if self.requested:
            stop()
        return self._event
