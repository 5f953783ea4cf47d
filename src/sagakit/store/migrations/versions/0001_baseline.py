"""Baseline: saga_instances, saga_events, saga_outbox, saga_inbox and their indexes.

Revision ID: 0001
Revises:

This baseline creates the tables as ``schema.build_tables`` declares them. A later
change to ``schema.py`` gets its own revision with explicit ``op`` calls, and this
file then freezes a copy of the tables as they were here.
"""

from typing import Any

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade(tables: Any) -> None:
    tables.metadata.create_all(op.get_bind())


def downgrade(tables: Any) -> None:
    tables.metadata.drop_all(op.get_bind())
