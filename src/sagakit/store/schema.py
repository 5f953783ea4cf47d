"""The one SQLAlchemy Core schema for every SQL dialect, with an optional prefix and schema."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
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
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.schema import SchemaItem
from sqlalchemy.sql.compiler import DDLCompiler
from sqlalchemy.sql.ddl import BaseDDLElement
from sqlalchemy.types import TypeDecorator

from ..status import RUNNABLE

#: Non-terminal statuses as SQL, for the partial indexes on runnable and timed-out sagas.
ACTIVE_STATUSES_SQL = "status IN ({})".format(", ".join(f"'{s.value}'" for s in sorted(RUNNABLE)))


class UtcDateTime(TypeDecorator[datetime]):
    """Store aware UTC datetimes; hand back aware UTC datetimes on every dialect."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        # SQLite and MySQL keep no zone: store naive UTC so that text order is time order.
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: MariaDB/MySQL tables compare keys byte for byte (migration 0002 converts older ones).
_BINARY_KEYS: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_nopad_bin"}

#: The context and event payloads: JSONB on PostgreSQL, JSON elsewhere.
JsonType = JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
#: Auto-incrementing ids that stay INTEGER on SQLite (its only auto-increment type).
BigId = BigInteger().with_variant(Integer(), "sqlite")


@dataclass(frozen=True, slots=True)
class SagaTables:
    """The tables of one sagakit schema (one prefix, one database schema)."""

    metadata: MetaData
    instances: Table
    events: Table
    outbox: Table
    inbox: Table
    prefix: str
    schema: str | None

    @property
    def version_table(self) -> str:
        """Alembic's version table for sagakit, kept apart from the application's own."""
        return f"{self.prefix}sagakit_alembic_version"


def outbox_delivery_columns() -> list[Column[Any]]:
    """The outbox columns the relay keeps (added by migration 0004)."""
    return [
        # nullable only so that a migration can add it to existing rows; always written
        Column("message_id", String(64)),
        Column("saga_type", String(100)),
        Column("step", String(100)),
        Column("next_attempt_at", UtcDateTime()),
        Column("claimed_by", String(100)),
        Column("claimed_until", UtcDateTime()),
        Column("dead_at", UtcDateTime()),
        Column("last_error", Text),
    ]


def _has_partial_indexes(
    ddl: BaseDDLElement,
    target: SchemaItem | str,
    bind: Connection | None,
    tables: list[Table] | None = None,
    state: Any | None = None,
    *,
    dialect: Dialect,
    compiler: DDLCompiler | None = None,
    checkfirst: bool = False,
) -> bool:
    """Whether ``dialect`` has indexes with a WHERE clause (MariaDB and MySQL do not) is ``state``."""
    return (dialect.name not in ("mysql", "mariadb")) is state


def build_tables(prefix: str = "", schema: str | None = None) -> SagaTables:
    """Declare sagakit's tables, named ``{prefix}saga_instances`` etc. in ``schema``."""
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
        Column("crashes", Integer, nullable=False, server_default="0"),
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
        Column("deferred", JsonType),
        **_BINARY_KEYS,
    )
    active = text(ACTIVE_STATUSES_SQL)
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
    Index(f"ix_{p}saga_instances_due", instances.c.status, instances.c.next_attempt_at)
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
        **_BINARY_KEYS,
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
        *outbox_delivery_columns(),
        **_BINARY_KEYS,
    )
    # pending messages in id order: the relay's scan and the backlog gauges
    Index(
        f"ix_{p}saga_outbox_unpublished",
        outbox.c.id,
        postgresql_where=text("published_at IS NULL"),
        sqlite_where=text("published_at IS NULL"),
    ).ddl_if(callable_=_has_partial_indexes, state=True)
    # with no partial indexes, published_at leads (revision 0006)
    Index(f"ix_{p}saga_outbox_unpublished", outbox.c.published_at, outbox.c.id).ddl_if(
        callable_=_has_partial_indexes, state=False
    )
    Index(f"ix_{p}saga_outbox_message_id", outbox.c.message_id, unique=True)
    # a saga's messages: `sagakit outbox list --saga`, the dashboard, deleting a saga
    Index(f"ix_{p}saga_outbox_saga_id", outbox.c.saga_id, outbox.c.id)
    inbox = Table(
        f"{p}saga_inbox",
        md,
        Column("message_id", String(255), primary_key=True),
        Column("consumer", String(255), primary_key=True),
        Column("received_at", UtcDateTime(), nullable=False),
        **_BINARY_KEYS,
    )
    return SagaTables(md, instances, events, outbox, inbox, prefix, schema)
