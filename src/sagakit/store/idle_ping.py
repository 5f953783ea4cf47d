"""Test a pooled server connection before use, but only one that sat idle for a while.

SQLAlchemy's ``pool_pre_ping`` sends a ping on every checkout: on PostgreSQL that round
trip cost more than the primary-key read it guarded (0.5-0.7 ms against 0.5 ms). A
connection in steady use needs no ping: had the server gone away under it, the last
statement would have failed and invalidated the pool. What the ping is for is the first
checkout after a quiet spell, such as a server restart, so only a connection idle for
longer than ``IDLE_SECONDS`` is pinged; one that fails the ping is replaced before use.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine

#: A pooled connection unused for longer than this is pinged at its next checkout.
IDLE_SECONDS = 1.0
_IDLE_SINCE = "sagakit_idle_since"


def ping_when_idle(engine: AsyncEngine) -> None:
    """Ping ``engine``'s pooled connections at checkout when idle over ``IDLE_SECONDS``."""
    sync_engine = engine.sync_engine
    dialect = sync_engine.dialect

    @event.listens_for(sync_engine, "checkin")
    def _checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since <= IDLE_SECONDS:
            return  # new, or in steady use
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as e:  # dead or broken: the pool replaces it and tries again
            raise DisconnectionError(f"pooled connection failed its ping: {e!r}") from e
