"""Local database servers for tests: skip when absent on a laptop, fail when CI is set."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get("SAGAKIT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_ADMIN_URL = os.environ.get("SAGAKIT_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test")


def unavailable(what: str, error: BaseException) -> None:
    """Skip the test, or fail it under CI, because ``what`` cannot be reached."""
    message = f"{what} is not reachable ({error}); start it (`.ci/run` starts the local servers the tests use)"
    if os.environ.get("CI"):
        pytest.fail(f"CI: {message}")
    pytest.skip(message)


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test", timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _mysql(sql: str) -> None:
    import aiomysql

    conn = await aiomysql.connect(host="127.0.0.1", port=3306, user="root", connect_timeout=5)
    try:
        async with conn.cursor() as cur:
            await cur.execute(sql)
        await conn.commit()
    finally:
        conn.close()


def fresh_postgres_schema() -> tuple[str, str]:
    """Return (store URL, schema) for a new, empty PostgreSQL schema."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_pg(f"CREATE SCHEMA {schema}"))
    except Exception as e:
        unavailable("PostgreSQL at 127.0.0.1:5432", e)
    return f"{PG_ADMIN_URL}?schema={schema}", schema


def drop_postgres_schema(schema: str) -> None:
    asyncio.run(_pg(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))


@contextmanager
def store_url_for(backend: str, tmp_path: Path) -> Iterator[str]:
    """Yield a fresh, empty store URL on ``backend``; drop the server-side part afterwards.

    ``backend`` is one of memory, sqlite, postgres, mariadb.
    """
    if backend == "memory":
        yield "memory://"
    elif backend == "sqlite":
        yield f"sqlite:///{tmp_path}/sagas.db"
    elif backend == "postgres":
        url, schema = fresh_postgres_schema()
        try:
            yield url
        finally:
            drop_postgres_schema(schema)
    elif backend == "mariadb":
        name = f"t_{uuid.uuid4().hex[:12]}"
        try:
            asyncio.run(_mysql(f"CREATE DATABASE {name}"))
        except Exception as e:
            unavailable("MariaDB at 127.0.0.1:3306", e)
        try:
            yield f"mysql://root@127.0.0.1:3306/{name}"
        finally:
            asyncio.run(_mysql(f"DROP DATABASE IF EXISTS {name}"))
    else:
        raise ValueError(f"unknown test backend {backend!r}")


RABBITMQ_URL = os.environ.get("SAGAKIT_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")


def _answering(what: str, port: int) -> None:
    """Skip (or fail under CI) unless something listens on 127.0.0.1:``port``."""
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError as e:
        unavailable(f"{what} at 127.0.0.1:{port}", e)


def rabbitmq_url() -> str:
    """The test RabbitMQ's URL; skip (or fail under CI) when it does not answer."""
    _answering("RabbitMQ", 5672)
    return RABBITMQ_URL


NATS_URL = os.environ.get("SAGAKIT_TEST_NATS", "nats://127.0.0.1:4222")


def nats_url() -> str:
    """The test NATS server's URL; skip (or fail under CI) when it does not answer."""
    _answering("NATS", 4222)
    return NATS_URL


async def drop_nats_streams(url: str, stream: str) -> None:
    """Delete a test's JetStream stream and its dead-letter stream, if they exist."""
    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for name in (stream, f"{stream}-dead"):
            with suppress(nats.js.errors.NotFoundError):
                await js.delete_stream(name)
    finally:
        await nc.close()
