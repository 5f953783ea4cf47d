"""PostgreSQL group commits in one statement: a batch's rows, events and messages at once.

The general writer sends ``BEGIN; UPDATE; INSERT; COMMIT``: four round trips per batch,
each through SQLAlchemy's execution layer. Here a batch of checkpoints is one statement,
sent outside a transaction block, so PostgreSQL runs it as its own transaction::

    WITH v AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS v(id text, b_expected int, ...)),
         u AS (UPDATE saga_instances t SET ... FROM v
               WHERE t.id = v.id AND t.version = v.b_expected RETURNING t.id),
         e AS (INSERT INTO saga_events (...) SELECT ... FROM jsonb_to_recordset($2::jsonb) ...
               WHERE x.saga_id IN (SELECT id FROM u))
    SELECT id FROM u

Each row's version check is the ``WHERE`` of its update; only the rows it returns get
their events and messages, so one stale writer fails alone instead of failing the batch.
The rows travel as one JSON document per table (one parameter each: encoding dozens of
arrays cost more client time than the statement saved); the column types of the record
sets come from the SQLAlchemy schema. New sagas are an ``INSERT ... ON CONFLICT DO
NOTHING`` beside the update, and the NOTIFYs the general path sends (new runnable sagas,
new messages) are part of the statement. Inbox marks and started sagas take the general
path (they need the duplicate checks it makes).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Dialect, Table

from .sql.rows import _EVENT_COLUMNS, _MUTABLE, _Write, event_params, message_params


def _plain(value: object) -> str:
    """JSON for what ``json`` cannot write: timestamps (the rows' only other type)."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"a checkpoint column holds a {type(value).__name__}: {value!r:.60}")


def _encode(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, default=_plain, ensure_ascii=False, allow_nan=False)


class _RecordSet:
    """One table's rows as ``jsonb_to_recordset($n::jsonb) AS alias(name type, ...)``."""

    def __init__(
        self,
        table: Table,
        names: Sequence[str],
        dialect: Dialect,
        keys: Sequence[str] | None = None,
    ) -> None:
        #: The JSON keys, also the record set's column names (default: the table's).
        self.keys = tuple(keys or names)
        types = [table.c[n].type.compile(dialect=dialect) for n in names]
        self._columns = ", ".join(f"{k} {t}" for k, t in zip(self.keys, types, strict=True))

    def source(self, parameter: int, alias: str) -> str:
        return f"jsonb_to_recordset(${parameter}::jsonb) AS {alias}({self._columns})"

    def rows(self, values: Sequence[dict[str, Any]]) -> str:
        return _encode([{k: row[k] for k in self.keys} for row in values])


class OneStatementCheckpoints:
    """Builds the one statement of a batch of creations and checkpoints, and its parameters."""

    def __init__(
        self,
        instances: Table,
        events: Table,
        outbox: Table,
        dialect: Dialect,
        *,
        sagas_channel: str,
        outbox_channel: str,
    ) -> None:
        quote = dialect.identifier_preparer.format_table
        self._tables = (quote(instances), quote(events), quote(outbox))
        # b_expected: the version the writer read (the new one is among the _MUTABLE)
        self._updates = _RecordSet(
            instances, ("id", "version", *_MUTABLE), dialect, ("id", "b_expected", *_MUTABLE)
        )
        self._creations = _RecordSet(
            instances, ("id", "saga_type", "kind", "created_at", *_MUTABLE), dialect
        )
        self._events = _RecordSet(events, _EVENT_COLUMNS, dialect)
        self._messages = _RecordSet(outbox, [c.name for c in outbox.c if c.name != "id"], dialect)
        self._channels = (sagas_channel.replace("'", "''"), outbox_channel.replace("'", "''"))
        self._sql: dict[tuple[bool, bool, bool, bool], str] = {}

    @staticmethod
    def takes(batch: Sequence[_Write]) -> bool:
        """Whether no write carries inbox marks or started sagas, and no saga is in twice."""
        plain = all(not w.inbox and not w.starts for w in batch)
        return plain and len({w.saga_id for w in batch}) == len(batch)

    def statement(self, batch: Sequence[_Write]) -> tuple[str, list[str]]:
        """The SQL and parameters writing ``batch``; it returns the ids it wrote."""
        updates = [
            {**w.params, "id": w.saga_id, "b_expected": w.expected_version}
            for w in batch
            if w.expected_version is not None
        ]
        creations = [w.params for w in batch if w.expected_version is None]
        events = [event_params(e) for w in batch for e in w.events]
        messages = [message_params(m) for w in batch for m in w.outbox]
        params = []
        for rows, shape in (
            (updates, self._updates),
            (creations, self._creations),
            (events, self._events),
            (messages, self._messages),
        ):
            if rows:
                params.append(shape.rows(rows))
        key = (bool(updates), bool(creations), bool(events), bool(messages))
        sql = self._sql.get(key)
        if sql is None:
            sql = self._sql[key] = self._build(*key)
        return sql, params

    def _build(self, updates: bool, creations: bool, events: bool, messages: bool) -> str:
        instances, events_table, outbox_table = self._tables
        sagas_channel, outbox_channel = self._channels
        parts: list[str] = []
        written: list[str] = []
        notices: list[str] = []
        parameter = 1
        if updates:
            sets = ", ".join(f"{name} = v.{name}" for name in _MUTABLE)
            parts += [
                f"v AS (SELECT * FROM {self._updates.source(parameter, 'v')})",
                f"u AS (UPDATE {instances} AS t SET {sets} FROM v "
                "WHERE t.id = v.id AND t.version = v.b_expected RETURNING t.id)",
            ]
            written.append("SELECT id FROM u")
            parameter += 1
        if creations:
            columns = ", ".join(self._creations.keys)
            parts += [
                f"c AS (SELECT * FROM {self._creations.source(parameter, 'c')})",
                f"i AS (INSERT INTO {instances} ({columns}) SELECT {columns} FROM c "
                "ON CONFLICT (id) DO NOTHING RETURNING id, status)",
            ]
            written.append("SELECT id FROM i")
            # workers elsewhere hear of new runnable sagas when this commits
            notices.append(f"SELECT '{sagas_channel}' FROM i WHERE status = 'PENDING'")
            parameter += 1
        parts.append(f"w AS ({' UNION ALL '.join(written)})")
        if events:
            parts.append(self._insert("e", events_table, self._events, parameter))
            parameter += 1
        if messages:
            parts.append(self._insert("o", outbox_table, self._messages, parameter, " RETURNING 1"))
            notices.append(f"SELECT '{outbox_channel}' FROM o")  # for the relays elsewhere
        tail = "SELECT id FROM w"
        if notices:
            heard = " UNION ".join(f"({q} LIMIT 1)" for q in notices)
            parts.append(f"n AS (SELECT pg_notify(channel, '') FROM ({heard}) AS h(channel))")
            tail += " CROSS JOIN (SELECT count(*) FROM n) AS notified"
        return "WITH " + ",\n".join(parts) + "\n" + tail

    @staticmethod
    def _insert(name: str, table: str, rows: _RecordSet, parameter: int, back: str = "") -> str:
        columns = ", ".join(rows.keys)
        return (
            f"{name} AS (INSERT INTO {table} ({columns}) SELECT {columns} "
            f"FROM {rows.source(parameter, 'x')} WHERE x.saga_id IN (SELECT id FROM w){back})"
        )
