"""LISTEN on PostgreSQL (new sagas, new outbox messages), on a connection reopened whenever it dies."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import URL

log = logging.getLogger("sagakit.store")

#: Waits between attempts to reopen a lost LISTEN connection, seconds (the last repeats).
_BACKOFF = (0.1, 0.5, 1.0, 2.0, 5.0)
#: The application_name of LISTEN connections, so operators (and tests) can find them.
APPLICATION_NAME = "sagakit-listen"


def listen_dsn(url: URL) -> str:
    """The libpq DSN of the store URL, with every connect argument it carries (sslmode…)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    """Keeps one LISTEN connection open on ``channel`` and calls ``callback`` per NOTIFY.

    When the connection dies (server restart, ``pg_terminate_backend``, network) it is
    reopened with back-off, and ``callback`` is called once more after each reconnect,
    since a saga started while nobody listened would otherwise wait for the next poll.
    """

    def __init__(
        self,
        url: URL,
        channel: str,
        callback: Callable[[], None],
        *,
        description: str,
        connect_args: dict[str, Any],
        purpose: str = "new sagas",
    ) -> None:
        self.dsn = listen_dsn(url)
        self.purpose = purpose
        self.channel = channel
        self.callback = callback
        self.description = description
        self.connect_args = connect_args
        #: How many times a LISTEN connection was established (1 plus the reconnects).
        self.connections = 0
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> bool:
        """Open the first connection; keep reopening it in the background. False: no LISTEN."""
        try:
            lost = await self._connect()
        except Exception as e:  # polling still works without LISTEN
            log.warning("LISTEN on %s failed (%s); relying on polling", self.description, e)
            return False
        self._task = asyncio.create_task(self._supervise(lost), name="sagakit-listen")
        return True

    async def _connect(self) -> asyncio.Future[None]:
        import asyncpg

        settings = dict(self.connect_args.get("server_settings") or {})
        settings["application_name"] = APPLICATION_NAME
        conn: Any = await asyncpg.connect(
            self.dsn, timeout=self.connect_args.get("timeout", 10), server_settings=settings
        )
        lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_lost(_conn: Any) -> None:
            if not lost.done():
                lost.set_result(None)

        conn.add_termination_listener(on_lost)
        await conn.add_listener(self.channel, lambda *_: self.callback())
        self._conn = conn
        self.connections += 1
        log.info(
            "listening for %s on %s (channel %s)", self.purpose, self.description, self.channel
        )
        return lost

    async def _supervise(self, lost: asyncio.Future[None]) -> None:
        while True:
            await lost
            log.warning("LISTEN connection to %s was lost; reconnecting", self.description)
            with contextlib.suppress(Exception):
                self._conn.terminate()
            for attempt in itertools.count():
                await asyncio.sleep(_BACKOFF[min(attempt, len(_BACKOFF) - 1)])
                try:
                    lost = await self._connect()
                    break
                except Exception as e:  # keep trying; polling covers the gap
                    log.warning("LISTEN on %s still failing: %s", self.description, e)
            self.callback()

    async def close(self) -> None:
        """Stop listening and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self._conn.close()
