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
new messages) are part of the statement. Inbox marks are checked against the inbox in
the same statement: a write whose message was applied before updates nothing (its row
comes back flagged as a duplicate); if two writers race with the same message, the row
lock and version check of the update let only one of them through. Batches that start
sagas take the general path.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Dialect, Table

from .records import utcnow
from .schema import SagaTables
from .sql.rows import (
    _EVENT_COLUMNS,
    _MUTABLE,
    _Write,
    event_params,
    inbox_params,
    message_params,
)


def _plain(value: object) -> str:
    """JSON for what ``json`` cannot write: timestamps (the rows' only other type)."""
    if isinstance(value, datetime):
        # naive means UTC, as UtcDateTime binds it (never the server's TimeZone)
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    raise TypeError(f"a checkpoint column holds a {type(value).__name__}: {value!r:.60}")


def _encode(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, default=_plain, ensure_ascii=False, allow_nan=False)


class _RecordSet:
    """One table's rows as ``jsonb_to_recordset($n::jsonb) AS alias(name type, ...)``."""

    def __init__(self, types: dict[str, str]) -> None:
        #: The JSON keys, also the record set's column names, with their SQL types.
        self.types = types
        self.keys = tuple(types)
        self._columns = ", ".join(f"{k} {t}" for k, t in types.items())

    @classmethod
    def of(
        cls, table: Table, names: Sequence[str], dialect: Dialect, keys: Sequence[str] = ()
    ) -> _RecordSet:
        """The record set of ``names`` of ``table`` (called ``keys`` if given)."""
        types = [table.c[n].type.compile(dialect=dialect) for n in names]
        return cls(dict(zip(keys or names, types, strict=True)))

    def narrowed(self, keys: Sequence[str]) -> _RecordSet:
        """The same record set with only ``keys`` (in this set's order)."""
        return _RecordSet({k: t for k, t in self.types.items() if k in keys})

    def source(self, parameter: int, alias: str) -> str:
        return f"jsonb_to_recordset(${parameter}::jsonb) AS {alias}({self._columns})"

    def rows(self, values: Sequence[dict[str, Any]]) -> str:
        return _encode([{k: row[k] for k in self.keys} for row in values])


class OneStatementCheckpoints:
    """Builds the one statement of a batch of creations and checkpoints, and its parameters."""

    def __init__(
        self,
        tables: SagaTables,
        dialect: Dialect,
        *,
        sagas_channel: str,
        outbox_channel: str,
    ) -> None:
        quote = dialect.identifier_preparer.format_table
        self._tables = tuple(quote(t) for t in (tables.instances, tables.events, tables.outbox))
        self._inbox = quote(tables.inbox)
        instances = tables.instances
        # b_expected: the version the writer read (the new one is among the _MUTABLE)
        self._updates = _RecordSet.of(
            instances, ("id", "version", *_MUTABLE), dialect, ("id", "b_expected", *_MUTABLE)
        )
        self._creations = _RecordSet.of(
            instances, ("id", "saga_type", "kind", "created_at", *_MUTABLE), dialect
        )
        self._events = _RecordSet.of(tables.events, _EVENT_COLUMNS, dialect)
        outbox_columns = [c.name for c in tables.outbox.c if c.name != "id"]
        self._messages = _RecordSet.of(tables.outbox, outbox_columns, dialect)
        marks = _RecordSet.of(tables.inbox, ("consumer", "message_id", "received_at"), dialect)
        saga_id = instances.c.id.type.compile(dialect=dialect)
        self._marks = _RecordSet({"saga_id": saga_id, **marks.types})
        self._channels = (sagas_channel.replace("'", "''"), outbox_channel.replace("'", "''"))
        self._sql: dict[tuple[tuple[str, ...], bool, bool, bool, bool], tuple[str, _RecordSet]]
        self._sql = {}

    def statement(self, batch: Sequence[_Write]) -> tuple[str, list[str]]:
        """The SQL and parameters writing ``batch``.

        It returns a row ``(saga id, duplicate)`` per write it applied (``false``) and
        per write it refused because one of its inbox marks was there already (``true``).
        """
        updates = [
            {**w.params, "id": w.saga_id, "b_expected": w.expected_version}
            for w in batch
            if w.expected_version is not None
        ]
        # only the columns some checkpoint of the batch changes (the version always does)
        changed = {c for w in batch if w.expected_version is not None for c in w.columns}
        columns = tuple(c for c in _MUTABLE if c in changed) if updates else ()
        creations = [w.params for w in batch if w.expected_version is None]
        now = utcnow()
        marks = [{"saga_id": w.saga_id, **inbox_params(m, now)} for w in batch for m in w.inbox]
        events = [event_params(e) for w in batch for e in w.events]
        messages = [message_params(m) for w in batch for m in w.outbox]
        key = (columns, bool(creations), bool(marks), bool(events), bool(messages))
        built = self._sql.get(key)
        if built is None:
            built = self._sql[key] = self._build(*key)
        sql, update_rows = built
        params = []
        for rows, shape in (  # in the order _build numbers them
            (marks, self._marks),
            (updates, update_rows),
            (creations, self._creations),
            (events, self._events),
            (messages, self._messages),
        ):
            if rows:
                params.append(shape.rows(rows))
        return sql, params

    def _build(
        self,
        columns: tuple[str, ...],
        creations: bool,
        marks: bool,
        events: bool,
        messages: bool,
    ) -> tuple[str, _RecordSet]:
        instances, events_table, outbox_table = self._tables
        sagas_channel, outbox_channel = self._channels
        parts: list[str] = []
        written: list[str] = []
        notices: list[str] = []
        parameter = 1
        fresh = ""
        if marks:
            # a write one of whose messages this consumer applied before writes nothing
            parts += [
                f"m AS (SELECT * FROM {self._marks.source(parameter, 'm')})",
                # LATERAL ... LIMIT 1: one primary-key probe per mark, whatever the planner
                # guesses of the record set's size (it guesses 100 rows, and would scan)
                f"seen AS (SELECT DISTINCT m.saga_id FROM m CROSS JOIN LATERAL "
                f"(SELECT 1 FROM {self._inbox} AS i WHERE i.message_id = m.message_id "
                "AND i.consumer = m.consumer LIMIT 1) AS hit)",
            ]
            fresh = " AND v.id NOT IN (SELECT saga_id FROM seen)"
            parameter += 1
        updates = self._updates.narrowed(("id", "b_expected", *columns))
        if columns:
            sets = ", ".join(f"{name} = v.{name}" for name in columns)
            parts += [
                f"v AS (SELECT * FROM {updates.source(parameter, 'v')})",
                # "= ANY(ARRAY(...))" lets the planner probe the primary key: joined to a
                # record set it guesses is 100 rows, it would scan the whole table
                f"u AS (UPDATE {instances} AS t SET {sets} FROM v "
                "WHERE t.id = ANY(ARRAY(SELECT v.id FROM v)) AND t.id = v.id "
                f"AND t.version = v.b_expected{fresh} RETURNING t.id)",
            ]
            written.append("SELECT id FROM u")
            parameter += 1
        if creations:
            listed = ", ".join(self._creations.keys)
            parts += [
                f"c AS (SELECT * FROM {self._creations.source(parameter, 'c')})",
                f"i AS (INSERT INTO {instances} ({listed}) SELECT {listed} FROM c "
                "ON CONFLICT (id) DO NOTHING RETURNING id, status)",
            ]
            written.append("SELECT id FROM i")
            # workers elsewhere hear of new runnable sagas when this commits
            notices.append(f"SELECT '{sagas_channel}' FROM i WHERE status = 'PENDING'")
            parameter += 1
        parts.append(f"w AS ({' UNION ALL '.join(written)})")
        if marks:
            parts.append(
                f"mi AS (INSERT INTO {self._inbox} (consumer, message_id, received_at) "
                "SELECT consumer, message_id, received_at FROM m "
                "WHERE m.saga_id IN (SELECT id FROM w))"
            )
        if events:
            parts.append(self._insert("e", events_table, self._events, parameter))
            parameter += 1
        if messages:
            parts.append(self._insert("o", outbox_table, self._messages, parameter, " RETURNING 1"))
            notices.append(f"SELECT '{outbox_channel}' FROM o")  # for the relays elsewhere
        answer = "SELECT id, false AS duplicate FROM w"
        if marks:
            answer += " UNION ALL SELECT saga_id, true FROM seen"
        tail = f"SELECT r.id, r.duplicate FROM ({answer}) AS r"
        if notices:
            heard = " UNION ".join(f"({q} LIMIT 1)" for q in notices)
            parts.append(f"n AS (SELECT pg_notify(channel, '') FROM ({heard}) AS h(channel))")
            tail += " CROSS JOIN (SELECT count(*) FROM n) AS notified"
        return "WITH " + ",\n".join(parts) + "\n" + tail, updates

    @staticmethod
    def _insert(name: str, table: str, rows: _RecordSet, parameter: int, back: str = "") -> str:
        columns = ", ".join(rows.keys)
        return (
            f"{name} AS (INSERT INTO {table} ({columns}) SELECT {columns} "
            f"FROM {rows.source(parameter, 'x')} WHERE x.saga_id IN (SELECT id FROM w){back})"
        )
