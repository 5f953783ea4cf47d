"""saga_instances.crashes: worker deaths while running the current step, apart from attempts.

Revision ID: 0003
Revises: 0002
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade(tables: Any) -> None:
    op.add_column(
        tables.instances.name,
        sa.Column("crashes", sa.Integer(), nullable=False, server_default="0"),
        schema=tables.schema,
    )


def downgrade(tables: Any) -> None:
    op.drop_column(tables.instances.name, "crashes", schema=tables.schema)
