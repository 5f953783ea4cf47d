"""Create or upgrade sagakit's schema with its Alembic migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from .schema import SagaTables

_SCRIPTS = Path(__file__).with_name("migrations")


def _config(connection: Connection, tables: SagaTables) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["connection"] = connection
    config.attributes["tables"] = tables
    return config


def upgrade(connection: Connection, tables: SagaTables, revision: str = "head") -> None:
    """Bring the schema on ``connection`` up to ``revision`` (run inside ``run_sync``)."""
    command.upgrade(_config(connection, tables), revision)


def current_revision(connection: Connection, tables: SagaTables) -> str | None:
    """Return the schema revision the database is at, or ``None`` if it has none."""
    context = MigrationContext.configure(
        connection,
        opts={"version_table": tables.version_table, "version_table_schema": tables.schema},
    )
    return context.get_current_revision()


def head_revision() -> str:
    """Return the newest revision this version of sagakit knows."""
    head = ScriptDirectory(str(_SCRIPTS)).get_current_head()
    assert head is not None
    return head
