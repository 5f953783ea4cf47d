"""PostgreSQL outbox claims and publish marks on the writer's own asyncpg connection.

The relay's bookkeeping shares the event loop with its publishing, so its cost is time
the loop cannot spend encoding and sending messages. Through SQLAlchemy a claim was a
transaction of five or more round trips whose scan of about four rows per claimed
message went through SQLAlchemy's result processing; here the scan reads plain asyncpg
records, and the claim is one statement, outside a transaction block:

    UPDATE outbox SET claimed_by = …, attempts = attempts + 1
    WHERE id IN (SELECT id FROM outbox WHERE id = ANY($heads) AND <free>
                 FOR UPDATE SKIP LOCKED)
    RETURNING …

The heads are still found by the scan in id order (see ``SqlOutbox._heads``: an
anti-join plan, with the statistics a fresh outbox has, took seconds), and the claim
probes the primary key for each head, checking again that it is free, skipping rows
another relay holds. A mark is one ``UPDATE … WHERE id = ANY($ids)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .records import OutboxMessage
from .schema import SagaTables
from .sql.outbox import take_heads

#: Rows read per page of the scan, per claimed message asked for (at least 100).
_PAGE_PER_HEAD = 4


class DirectOutboxPg:
    """The SQL of the direct claim and mark, made once from the outbox table."""

    def __init__(self, tables: SagaTables) -> None:
        o = tables.outbox
        table = f'"{o.schema}"."{o.name}"' if o.schema else f'"{o.name}"'
        self._columns = [c.name for c in o.c]
        free = (
            "dead_at IS NULL AND (next_attempt_at IS NULL OR next_attempt_at <= $1)"
            " AND (claimed_until IS NULL OR claimed_until <= $1)"
        )
        self._scan = (
            f"SELECT id, saga_id, {free} FROM {table}"
            " WHERE published_at IS NULL AND id > $2 ORDER BY id LIMIT $3"
        )
        returned = ", ".join(f'"{name}"' for name in self._columns)
        self._claim = (
            f"UPDATE {table} SET claimed_by = $2, claimed_until = $3, attempts = attempts + 1"
            f" WHERE id IN (SELECT id FROM {table} WHERE id = ANY($4::bigint[])"
            f" AND published_at IS NULL AND {free} FOR UPDATE SKIP LOCKED)"
            f" RETURNING {returned}"
        )
        self._published = (
            f"UPDATE {table} SET published_at = $1, claimed_by = NULL, claimed_until = NULL,"
            " last_error = NULL WHERE id = ANY($2::bigint[])"
        )

    async def claim(
        self, driver: Any, owner: str, now: datetime, until: datetime, limit: int
    ) -> list[OutboxMessage]:
        """Claim up to ``limit`` heads for ``owner``; them, in id order."""
        heads = await self._heads(driver, now, limit)
        if not heads:
            return []
        rows = await driver.fetch(self._claim, now, owner, until, heads)
        messages = [OutboxMessage(**dict(zip(self._columns, row, strict=True))) for row in rows]
        messages.sort(key=lambda m: m.id or 0)  # RETURNING's order is the server's
        return messages

    async def mark_published(self, driver: Any, ids: Sequence[int], at: datetime) -> None:
        """Mark ``ids`` published at ``at``, releasing their claims."""
        await driver.execute(self._published, at, list(ids))

    async def _heads(self, driver: Any, now: datetime, limit: int) -> list[int]:
        """Free messages that are the oldest unpublished of their saga, in id order."""
        page = max(limit * _PAGE_PER_HEAD, 100)
        heads: list[int] = []
        seen: set[str] = set()
        after = 0
        while len(heads) < limit:
            rows = await driver.fetch(self._scan, now, after, page)
            take_heads(rows, seen, heads)
            if len(rows) < page:
                break
            after = rows[-1][0]
        return heads[:limit]
