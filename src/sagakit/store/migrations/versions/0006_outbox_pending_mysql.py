"""On MariaDB/MySQL the unpublished-message index leads with ``published_at``.

Revision ID: 0006
Revises: 0005

PostgreSQL and SQLite index unpublished messages with a partial index on ``id``
(``WHERE published_at IS NULL``). MariaDB and MySQL have no partial indexes, so there
the same index was a second copy of the primary key, and the relay's scan for pending
messages walked every published row still kept for retention (days of them) on each
claim. Indexed by ``(published_at, id)``, the pending messages are one range read in id
order.
"""

from typing import Any

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _index_pending_by(tables: Any, *columns: str) -> None:
    if op.get_context().dialect.name not in ("mysql", "mariadb"):
        return
    name, schema = tables.outbox.name, tables.schema
    index = f"ix_{name}_unpublished"
    op.drop_index(index, table_name=name, schema=schema)
    op.create_index(index, name, list(columns), schema=schema)


def upgrade(tables: Any) -> None:
    _index_pending_by(tables, "published_at", "id")


def downgrade(tables: Any) -> None:
    _index_pending_by(tables, "id")
