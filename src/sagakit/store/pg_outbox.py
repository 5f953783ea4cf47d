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
another relay holds. A mark is one ``UPDATE … WHERE id = ANY($ids)``. The statements
are compiled once by SQLAlchemy from the schema and the general path's "free" condition,
values through the column types' own processors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Dialect, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement

from .records import OutboxMessage
from .schema import SagaTables
from .sql.outbox import claim_chosen, mark_published, pending_page, take_heads
from .sql.prepared import MessageRows, Prepared

#: Rows read per page of the scan, per claimed message asked for (at least 100).
_PAGE_PER_HEAD = 4


class DirectOutboxPg:
    """The direct claim and mark, compiled once from the outbox table and "free" condition."""

    def __init__(
        self, tables: SagaTables, dialect: Dialect, free: Callable[[Any], ColumnElement[bool]]
    ) -> None:
        o = tables.outbox
        now = bindparam("b_now", type_=o.c.created_at.type)
        self._scan = Prepared(
            pending_page(o, free(now), bindparam("b_after"), bindparam("b_page")), dialect
        )
        heads = bindparam("b_heads", type_=ARRAY(BigInteger))
        # the heads locked, checking again that they are free; those another relay holds
        # are skipped, not waited for
        locked = (
            select(o.c.id).where(o.c.id == any_(heads), free(now)).with_for_update(skip_locked=True)
        )
        self._claim = Prepared(claim_chosen(o, locked), dialect)
        self._rows = MessageRows(o.c, dialect)
        ids = bindparam("b_ids", type_=ARRAY(BigInteger))
        self._published = Prepared(mark_published(o, o.c.id == any_(ids)), dialect)

    async def claim(
        self, driver: Any, owner: str, now: datetime, until: datetime, limit: int
    ) -> list[OutboxMessage]:
        """Claim up to ``limit`` heads for ``owner``; them, in id order."""
        heads = await self._heads(driver, now, limit)
        if not heads:
            return []
        params = {"b_now": now, "b_owner": owner, "b_until": until, "b_heads": heads}
        rows = await driver.fetch(self._claim.sql, *self._claim.values(params))
        messages = [self._rows.message(row) for row in rows]
        messages.sort(key=lambda m: m.id or 0)  # RETURNING's order is the server's
        return messages

    async def mark_published(self, driver: Any, ids: Sequence[int], at: datetime) -> None:
        """Mark ``ids`` published at ``at``, releasing their claims."""
        params = {"b_ids": list(ids), "b_at": at}
        await driver.execute(self._published.sql, *self._published.values(params))

    async def _heads(self, driver: Any, now: datetime, limit: int) -> list[int]:
        """Free messages that are the oldest unpublished of their saga, in id order."""
        page = max(limit * _PAGE_PER_HEAD, 100)
        heads: list[int] = []
        seen: set[str] = set()
        after = 0
        while len(heads) < limit:
            values = self._scan.values({"b_now": now, "b_after": after, "b_page": page})
            rows = await driver.fetch(self._scan.sql, *values)
            take_heads(rows, seen, heads)
            if len(rows) < page:
                break
            after = rows[-1][0]
        return heads[:limit]
