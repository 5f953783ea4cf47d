"""Baseline: saga_instances, saga_events, saga_outbox, saga_inbox and their indexes.

Revision ID: 0001
Revises:

The tables exactly as this first revision created them, frozen here: later changes to
``schema.py`` come as revisions of their own (0002 collations, 0003 ``crashes``), so a
database created at any version upgrades to the same schema a new one gets.
"""

from typing import Any

from alembic import op
from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from sagakit.store.schema import BigId, JsonType, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def baseline_metadata(prefix: str, schema: str | None) -> MetaData:
    """The sagakit tables as of revision 0001, for a table prefix and database schema."""
    md = MetaData(schema=schema)
    p = prefix
    instances = Table(
        f"{p}saga_instances",
        md,
        Column("id", String(255), primary_key=True),
        Column("saga_type", String(100), nullable=False),
        Column("kind", String(20), nullable=False, server_default="orchestrated"),
        Column("status", String(20), nullable=False),
        Column("reason", String(40)),
        Column("current_step", String(100)),
        Column("step_index", Integer, nullable=False, server_default="0"),
        Column("data", JsonType, nullable=False),
        Column("attempt", Integer, nullable=False, server_default="0"),
        Column("next_attempt_at", UtcDateTime()),
        Column("timeout_at", UtcDateTime()),
        Column("version", Integer, nullable=False, server_default="0"),
        Column("lease_owner", String(100)),
        Column("lease_expires_at", UtcDateTime()),
        Column("definition_hash", String(64)),
        Column("paused_from", String(20)),
        Column("last_seq", Integer, nullable=False, server_default="0"),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
        Column("completed_at", UtcDateTime()),
        Column("archived_at", UtcDateTime()),
        Column("error_type", String(255)),
        Column("error_message", Text),
        Column("error_stack", Text),
    )
    active = text("status IN ('PENDING', 'RUNNING', 'COMPENSATING')")
    Index(f"ix_{p}saga_instances_status", instances.c.status)
    Index(f"ix_{p}saga_instances_type_status", instances.c.saga_type, instances.c.status)
    Index(f"ix_{p}saga_instances_created", instances.c.created_at)
    Index(
        f"ix_{p}saga_instances_runnable",
        instances.c.next_attempt_at,
        postgresql_where=active,
        sqlite_where=active,
    )
    Index(
        f"ix_{p}saga_instances_lease",
        instances.c.lease_expires_at,
        postgresql_where=active,
        sqlite_where=active,
    )
    Index(
        f"ix_{p}saga_instances_timeout",
        instances.c.timeout_at,
        postgresql_where=active,
        sqlite_where=active,
    )
    Index(
        f"ix_{p}saga_instances_archived",
        instances.c.archived_at,
        postgresql_where=text("archived_at IS NOT NULL"),
        sqlite_where=text("archived_at IS NOT NULL"),
    )
    events = Table(
        f"{p}saga_events",
        md,
        Column("id", BigId, primary_key=True, autoincrement=True),
        Column("saga_id", String(255), nullable=False),
        Column("seq", Integer, nullable=False),
        Column("type", String(40), nullable=False),
        Column("step", String(100)),
        Column("attempt", Integer),
        Column("at", UtcDateTime(), nullable=False),
        Column("duration_ms", Float),
        Column("output", JsonType),
        Column("error", JsonType),
        Column("actor", String(255)),
        Column("source_ip", String(64)),
        Column("reason", Text),
        UniqueConstraint("saga_id", "seq", name=f"uq_{p}saga_events_saga_seq"),
    )
    Index(f"ix_{p}saga_events_type_at", events.c.type, events.c.at)
    outbox = Table(
        f"{p}saga_outbox",
        md,
        Column("id", BigId, primary_key=True, autoincrement=True),
        Column("saga_id", String(255), nullable=False),
        Column("topic", String(255), nullable=False),
        Column("payload", JsonType, nullable=False),
        Column("headers", JsonType),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("published_at", UtcDateTime()),
        Column("attempts", Integer, nullable=False, server_default="0"),
    )
    Index(
        f"ix_{p}saga_outbox_unpublished",
        outbox.c.id,
        postgresql_where=text("published_at IS NULL"),
        sqlite_where=text("published_at IS NULL"),
    )
    Table(
        f"{p}saga_inbox",
        md,
        Column("message_id", String(255), primary_key=True),
        Column("consumer", String(255), primary_key=True),
        Column("received_at", UtcDateTime(), nullable=False),
    )
    return md


def upgrade(tables: Any) -> None:
    baseline_metadata(tables.prefix, tables.schema).create_all(op.get_bind())


def downgrade(tables: Any) -> None:
    baseline_metadata(tables.prefix, tables.schema).drop_all(op.get_bind())
