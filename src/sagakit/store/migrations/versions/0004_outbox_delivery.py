"""saga_outbox gets what the relay keeps: a stable message id, claims, retries, dead letters.

Revision ID: 0004
Revises: 0003

Messages written before this revision get their row id as message id, so a consumer that
deduplicates by message id sees each of them once, like every later one.
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from sagakit.store.schema import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("message_id", sa.String(64)),
    ("saga_type", sa.String(100)),
    ("step", sa.String(100)),
    ("next_attempt_at", UtcDateTime()),
    ("claimed_by", sa.String(100)),
    ("claimed_until", UtcDateTime()),
    ("dead_at", UtcDateTime()),
    ("last_error", sa.Text()),
)


def upgrade(tables: Any) -> None:
    name, schema = tables.outbox.name, tables.schema
    for column, kind in _COLUMNS:
        op.add_column(name, sa.Column(column, kind), schema=schema)
    outbox = sa.table(name, sa.column("id"), sa.column("message_id"), schema=schema)
    op.execute(
        outbox.update()
        .where(outbox.c.message_id.is_(None))
        .values(message_id=sa.cast(outbox.c.id, sa.String(64)))
    )
    op.create_index(f"ix_{name}_message_id", name, ["message_id"], unique=True, schema=schema)
    op.create_index(f"ix_{name}_saga_id", name, ["saga_id", "id"], schema=schema)


def downgrade(tables: Any) -> None:
    name, schema = tables.outbox.name, tables.schema
    op.drop_index(f"ix_{name}_saga_id", table_name=name, schema=schema)
    op.drop_index(f"ix_{name}_message_id", table_name=name, schema=schema)
    for column, _ in reversed(_COLUMNS):
        op.drop_column(name, column, schema=schema)
