"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
"""

from typing import Any

from alembic import op  # noqa: F401

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None


def upgrade(tables: Any) -> None:
    ${upgrades if upgrades else "pass"}


def downgrade(tables: Any) -> None:
    ${downgrades if downgrades else "pass"}
