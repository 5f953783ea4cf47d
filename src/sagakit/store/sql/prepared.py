"""Statements compiled once for a raw driver connection, and rows read back without SQLAlchemy.

The direct paths (SQLite's writer thread, the relay's claims on MariaDB) run SQL that
SQLAlchemy compiled from the schema, with every value converted by the column type's
own bind or result processor, so what they write and read is exactly what the general
path writes and reads; they skip only SQLAlchemy's per-execution work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

from sqlalchemy import Column, Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

from ..records import OutboxMessage

#: A converter of one value (``None``: the value as the driver takes or gives it).
_Converter = Callable[[Any], Any] | None


class Prepared:
    """A statement compiled once: its SQL and how to turn bind parameters into values."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        self.sql = str(compiled)
        steps: list[tuple[str, _Converter]] = []
        #: Values of binds made from literals in the statement (``attempts + 1``).
        self._literals: dict[str, Any] = {}
        for name in compiled.positiontup or []:
            bind = compiled.binds[name]
            steps.append((name, bind.type.dialect_impl(dialect).bind_processor(dialect)))
            if not bind.required:
                self._literals[name] = bind.value
        self._steps = tuple(steps)

    def values(self, params: dict[str, Any]) -> tuple[Any, ...]:
        """The positional values of ``params``, converted as SQLAlchemy binds them."""
        if self._literals:  # never on a checkpoint's statements, which bind every value
            params = {**self._literals, **params}
        return tuple(
            params[name] if convert is None else convert(params[name])
            for name, convert in self._steps
        )


class MessageRows:
    """Turns driver rows of ``columns`` (outbox columns) into outbox messages."""

    def __init__(self, columns: Iterable[Column[Any]], dialect: Dialect) -> None:
        self._columns: tuple[tuple[str, _Converter], ...] = tuple(
            (c.name, c.type.dialect_impl(dialect).result_processor(dialect, None)) for c in columns
        )

    def message(self, row: Iterable[Any]) -> OutboxMessage:
        """The message in ``row``, its values as the general path reads them."""
        values = {
            name: value if convert is None or value is None else convert(value)
            for (name, convert), value in zip(self._columns, row, strict=True)
        }
        return OutboxMessage(**values)
