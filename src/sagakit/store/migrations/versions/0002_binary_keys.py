"""Keys compare byte for byte on MariaDB/MySQL: binary, no-pad collation on every table.

Revision ID: 0002
Revises: 0001

The server default (``utf8mb4_general_ci``) matched ``Order-1`` to ``order-1`` and ``x``
to ``x ``, so an idempotent start could return another saga. SQLite and PostgreSQL
already compare keys byte for byte; on them this revision does nothing.
"""

from typing import Any

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def binary_collation(dialect: Any) -> str:
    """The binary collation that also keeps trailing spaces significant (NO PAD)."""
    return "utf8mb4_nopad_bin" if getattr(dialect, "is_mariadb", False) else "utf8mb4_0900_bin"


def upgrade(tables: Any) -> None:
    bind = op.get_bind()
    if bind.dialect.name not in ("mysql", "mariadb"):
        return
    collation = binary_collation(bind.dialect)
    for table in (tables.instances, tables.events, tables.outbox, tables.inbox):
        op.execute(
            f"ALTER TABLE `{table.name}` CONVERT TO CHARACTER SET utf8mb4 COLLATE {collation}"
        )


def downgrade(tables: Any) -> None:
    bind = op.get_bind()
    if bind.dialect.name not in ("mysql", "mariadb"):
        return
    for table in (tables.instances, tables.events, tables.outbox, tables.inbox):
        op.execute(
            f"ALTER TABLE `{table.name}` CONVERT TO CHARACTER SET utf8mb4 "
            "COLLATE utf8mb4_general_ci"
        )
