"""SQLite specifics of the SQL store: WAL, one writer, ``INSERT … ON CONFLICT DO NOTHING``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Insert, Select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .sql import SqlStore, attach_sqlite_setup


class SqliteStore(SqlStore):
    """The embedded default store: one file, many readers, one writer at a time."""

    locks_rows = False

    def _configure_engine(self) -> None:
        attach_sqlite_setup(self.engine)

    def _insert_ignore(self) -> Insert:
        return sqlite_insert(self.tables.instances).on_conflict_do_nothing(index_elements=["id"])

    def _lock_candidates(self, query: Select[Any]) -> Select[Any]:
        # BEGIN IMMEDIATE already holds the database's single write lock.
        return query
