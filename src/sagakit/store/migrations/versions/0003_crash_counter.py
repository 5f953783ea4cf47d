"""saga_instances.crashes: worker deaths while running the current step, apart from attempts.

Revision ID: 0003
Revises: 0002

A database created by the baseline of this version already has the column (the
baseline builds the tables from ``schema.py``), so the column is added only where it is
missing: every revision after the baseline is safe to run on any database it may meet.
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _has_crashes(tables: Any) -> bool:
    inspector = sa.inspect(op.get_bind())
    columns = inspector.get_columns(tables.instances.name, schema=tables.schema)
    return any(column["name"] == "crashes" for column in columns)


def upgrade(tables: Any) -> None:
    if not _has_crashes(tables):
        op.add_column(
            tables.instances.name,
            sa.Column("crashes", sa.Integer(), nullable=False, server_default="0"),
            schema=tables.schema,
        )


def downgrade(tables: Any) -> None:
    if _has_crashes(tables):
        op.drop_column(tables.instances.name, "crashes", schema=tables.schema)
