"""Connection settings for SQL stores: from the URL's query string and SAGAKIT_* variables."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL

from ..errors import ConfigurationError


class StoreSettings(BaseSettings):
    """Pool and timeout settings; a URL query parameter wins over the environment variable.

    ``postgresql://app@db/sagas?pool_size=20&statement_timeout=5`` or
    ``SAGAKIT_POOL_SIZE=20``.
    """

    model_config = SettingsConfigDict(env_prefix="SAGAKIT_", extra="ignore")

    pool_size: int = Field(10, ge=1, description="connections kept open per process")
    max_overflow: int = Field(10, ge=0, description="extra connections under load")
    pool_pre_ping: bool = Field(
        True, description="test a pooled connection before use when it sat idle over a second"
    )
    connect_timeout: float = Field(10.0, gt=0, description="seconds to wait for a connection")
    statement_timeout: float = Field(30.0, ge=0, description="seconds per statement; 0: none")
    idle_transaction_timeout: float = Field(
        10.0,
        ge=0,
        description=(
            "seconds a transaction may sit idle before the server ends it, so a frozen "
            "process cannot hold row locks that recovery needs; 0: none"
        ),
    )
    table_prefix: str = Field("", max_length=30, pattern=r"^[A-Za-z0-9_]*$")
    db_schema: str | None = Field(
        None,
        validation_alias=AliasChoices("db_schema", "SAGAKIT_SCHEMA"),
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="PostgreSQL schema",
    )

    @classmethod
    def from_url(cls, url: URL, **overrides: Any) -> tuple[StoreSettings, URL]:
        """Read settings from ``url``'s query (and the environment); return them and the
        URL without the parameters the driver would not understand."""
        ours = set(cls.model_fields) | {"schema", "prefix"}
        query = {k: v for k, v in url.query.items() if k in ours}
        if "prefix" in query:
            query["table_prefix"] = query.pop("prefix")
        if "schema" in query:
            query["db_schema"] = query.pop("schema")
        if overrides.get("schema") is not None:
            overrides["db_schema"] = overrides.pop("schema")
        overrides.pop("schema", None)
        values = {**query, **{k: v for k, v in overrides.items() if v not in (None, "")}}
        try:
            settings = cls(**values)
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
            )
            raise ConfigurationError(
                f"store settings for {url.render_as_string(hide_password=True)!r} are invalid: "
                f"{problems}"
            ) from None
        return settings, url.difference_update_query(list(ours))
