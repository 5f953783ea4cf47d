"""State machine instances: saga_instances.deferred, and an index to find due schedules.

Revision ID: 0005
Revises: 0004

``deferred`` holds an instance's schedules, the events held until it can apply them and
its faulted events (JSON). Workers find instances with a schedule due by
``(status, next_attempt_at)``.
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from sagakit.store.schema import JsonType

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade(tables: Any) -> None:
    name, schema = tables.instances.name, tables.schema
    op.add_column(name, sa.Column("deferred", JsonType), schema=schema)
    op.create_index(
        f"ix_{name}_due", name, ["status", "next_attempt_at"], schema=schema, unique=False
    )


def downgrade(tables: Any) -> None:
    name, schema = tables.instances.name, tables.schema
    op.drop_index(f"ix_{name}_due", table_name=name, schema=schema)
    op.drop_column(name, "deferred", schema=schema)
