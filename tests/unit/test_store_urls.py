"""Store URLs pick the backend; bad ones fail with the value and the fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import sagakit as sk
from sagakit.store.sqlite import SqliteStore


def test_memory_and_sqlite_urls_pick_their_stores(tmp_path: Path) -> None:
    assert isinstance(sk.open_store("memory://"), sk.MemoryStore)
    assert isinstance(sk.open_store(f"sqlite:///{tmp_path}/a.db"), SqliteStore)


def test_unknown_scheme_lists_supported_ones() -> None:
    with pytest.raises(sk.ConfigurationError, match=r"unknown backend 'oracle'.*sqlite:///"):
        sk.open_store("oracle://db")


def test_unparseable_url_is_named() -> None:
    with pytest.raises(sk.ConfigurationError, match="has no scheme"):
        sk.open_store("not a url")


def test_missing_folder_is_named_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(sk.ConfigurationError, match=r"folder .*nowhere.* does not exist.*mkdir"):
        sk.open_store(f"sqlite:///{tmp_path}/nowhere/sagas.db")


def test_unwritable_folder_is_named(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):  # root ignores modes: use a read-only kernel folder
        locked = Path("/proc/sys")
        if os.access(locked, os.W_OK):
            pytest.skip("no folder here is read-only for this user")
    with pytest.raises(sk.ConfigurationError, match="not writable"):
        sk.open_store(f"sqlite:///{locked}/sagas.db")


def test_passwords_never_appear_in_errors_or_repr() -> None:
    with pytest.raises(sk.ConfigurationError) as info:
        sk.open_store("oracle://user:s3cret@host/db")
    assert "s3cret" not in str(info.value)


async def test_schema_is_created_by_migrations_and_versioned(tmp_path: Path) -> None:
    store = sk.open_store(f"sqlite:///{tmp_path}/m.db")
    assert isinstance(store, SqliteStore)
    await store.open()
    try:
        from sagakit.store.migrate import head_revision

        assert await store.schema_revision() == head_revision()
    finally:
        await store.close()
    # opening again (already at head) is a no-op, not an error
    again = sk.open_store(f"sqlite:///{tmp_path}/m.db")
    await again.open()
    await again.close()


def test_settings_come_from_the_url_then_sagakit_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SAGAKIT_SCHEMA", "from_env")
    monkeypatch.setenv("SCHEMA", "not_ours")
    monkeypatch.setenv("SAGAKIT_POOL_SIZE", "3")
    from sagakit.store.sql import SqlStore

    store = sk.open_store("postgresql://u:pw@127.0.0.1/db")
    assert isinstance(store, SqlStore)
    assert store.tables.schema == "from_env"
    assert store.engine.pool.size() == 3  # type: ignore[attr-defined]
    store = sk.open_store("postgresql://u:pw@127.0.0.1/db?schema=from_url&pool_size=7")
    assert isinstance(store, SqlStore)
    assert store.tables.schema == "from_url"
    assert "pool_size" not in str(store.engine.url)  # not passed on to the driver
    lite = sk.open_store(f"sqlite:///{tmp_path}/p.db?prefix=app_")
    assert isinstance(lite, SqlStore)
    assert lite.tables.instances.name == "app_saga_instances"


def test_bad_settings_name_the_field() -> None:
    with pytest.raises(sk.ConfigurationError, match="pool_size"):
        sk.open_store("postgresql://u@127.0.0.1/db?pool_size=zero")
    with pytest.raises(sk.ConfigurationError, match="db_schema"):
        sk.open_store("postgresql://u@127.0.0.1/db?schema=bad-name;drop")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://sagas.db", r"two slashes.*sqlite:///sagas.db.*sqlite:////absolute"),
        ("postgresql://u@h/db?poolsize=5", r"unknown parameter 'poolsize'.*pool_size"),
        ("mysql://u@h/db?pool=1", r"unknown parameter 'pool'.*valid parameters for mysql"),
        ("postgresql://[::1", r"cannot be parsed"),
        ("", r"store URL is empty"),
        ("postgresql://app:se@cret@db/sagas", r"more than one '@'.*%40"),
    ],
)
def test_url_mistakes_name_the_fix_and_hide_the_password(url: str, message: str) -> None:
    with pytest.raises(sk.ConfigurationError, match=message) as info:
        sk.open_store(url)
    assert "se@" not in str(info.value) and "cret" not in str(info.value)


def test_a_folder_is_not_a_database_file(tmp_path: Path) -> None:
    with pytest.raises(sk.ConfigurationError, match="is a folder; name a database file"):
        sk.open_store(f"sqlite:///{tmp_path}")


async def test_a_missing_postgres_database_says_how_to_create_it() -> None:
    from ..servers import PG_ADMIN_URL, unavailable

    store = sk.open_store(PG_ADMIN_URL.rsplit("/", 1)[0] + "/no_such_database_here")
    with pytest.raises(sk.StoreError) as info:
        await store.open()
    if isinstance(info.value, sk.StoreUnavailable):
        unavailable("PostgreSQL at 127.0.0.1:5432", info.value)
    message = str(info.value)
    assert 'database "no_such_database_here" does not exist' in message
    assert "createdb no_such_database_here" in message and "sagakit migrate" not in message
