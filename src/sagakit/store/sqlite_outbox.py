"""SQLite outbox claims and publish marks on the writer thread's own ``sqlite3`` connection.

The relay's bookkeeping runs beside its publishing in one process, so every moment the
writer thread holds the GIL is a moment the event loop cannot encode or send a message.
Through SQLAlchemy a claim was three statements and a row of Python per scanned message
(about four per claimed one); here it is one prepared ``UPDATE … RETURNING`` whose
subquery finds the heads inside SQLite, and a mark is one ``UPDATE`` over a JSON array
of ids. The statements are compiled from the same schema and the same "free" condition
as the general path, values through the column types' own processors.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Dialect, bindparam, func, literal_column, select
from sqlalchemy.sql.elements import ColumnElement

from .records import OutboxMessage
from .schema import SagaTables
from .sql.outbox import claim_chosen, mark_published, saga_heads
from .sql.prepared import MessageRows, Prepared


class DirectOutbox:
    """Claims heads of the outbox and marks messages published in one statement each."""

    def __init__(
        self, tables: SagaTables, dialect: Dialect, free: Callable[[Any], ColumnElement[bool]]
    ) -> None:
        o = tables.outbox
        # the oldest unpublished message of each saga that is free now, in id order
        heads = (
            saga_heads(o, free(bindparam("b_now", type_=o.c.created_at.type)))
            .limit(bindparam("b_limit"))
            .offset(literal_column("0"))  # SQLite's LIMIT wants one, else a bind of its own
        )
        self._claim = Prepared(claim_chosen(o, heads), dialect)
        self._rows = MessageRows(o.c, dialect)
        ids = select(func.json_each(bindparam("b_ids")).table_valued("value").c.value)
        self._published = Prepared(mark_published(o, o.c.id.in_(ids)), dialect)

    def claim(
        self, raw: sqlite3.Connection, owner: str, now: datetime, until: datetime, limit: int
    ) -> list[OutboxMessage]:
        """Claim up to ``limit`` heads for ``owner`` until ``until``; them, in id order."""
        params = {"b_now": now, "b_limit": limit, "b_owner": owner, "b_until": until}
        # one statement outside BEGIN: SQLite makes it atomic, under the write lock
        rows = raw.execute(self._claim.sql, self._claim.values(params)).fetchall()
        messages = [self._rows.message(row) for row in rows]
        messages.sort(key=lambda m: m.id or 0)  # RETURNING's order is SQLite's choice
        return messages

    def mark_published(self, raw: sqlite3.Connection, ids: Sequence[int], at: datetime) -> None:
        """Mark ``ids`` published at ``at``, releasing their claims."""
        params = {"b_ids": json.dumps(list(ids)), "b_at": at}
        raw.execute(self._published.sql, self._published.values(params))
