"""Alembic environment for sagakit's own schema; driven by ``sagakit.store.migrate``.

The caller hands over an open connection (already inside a transaction) and the
tables to build, so the prefix and schema chosen at runtime reach every migration.
"""

from alembic import context

config = context.config
connection = config.attributes["connection"]
tables = config.attributes["tables"]

context.configure(
    connection=connection,
    target_metadata=tables.metadata,
    version_table=tables.version_table,
    version_table_schema=tables.schema,
)

with context.begin_transaction():
    context.run_migrations(tables=tables)
