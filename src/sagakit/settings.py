"""The settings of a Runtime (and of the worker and relay it runs): one object, one place.

Each setting is an argument of ``Runtime(...)`` and, where none is given, the environment
variable ``SAGAKIT_<NAME>`` (``SAGAKIT_WORKERS=16``, ``SAGAKIT_LEASE_SECONDS=10``,
``SAGAKIT_BROKER_URL=amqp://…``); an argument wins over the variable. Connection
settings of the store (pool, timeouts) are the store URL's (``store/settings.py``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigurationError

#: Sagas a default Runtime runs in the background: its own started sagas and those that
#: crashed processes left behind (once their lease expires).
DEFAULT_WORKERS = 4


class RuntimeSettings(BaseSettings):
    """What a Runtime is configured by, checked once, when it is built."""

    model_config = SettingsConfigDict(env_prefix="SAGAKIT_", extra="ignore", frozen=True)

    workers: int = Field(DEFAULT_WORKERS, ge=0, description="sagas run at once; 0: none here")
    lease_seconds: float = Field(30.0, gt=0, description="how long a claimed saga is ours")
    poll_interval: float = Field(1.0, gt=0, description="longest pause between polls, seconds")
    migrate: bool = Field(True, description="create or upgrade the schema on open")
    prefix: str = Field("", max_length=30, pattern=r"^[A-Za-z0-9_]*$", description="table prefix")
    owner: str | None = Field(None, max_length=100, description="this process's worker id")
    archive_after: timedelta | None = Field(
        None, description="archive sagas finished this long ago"
    )
    delete_archived_after: timedelta | None = Field(
        None, description="delete sagas archived this long ago"
    )
    broker_url: str | None = Field(None, description="where published messages go")

    @classmethod
    def build(cls, **given: Any) -> RuntimeSettings:
        """Settings from the arguments that were given (not ``None``) and the environment.

        ``ConfigurationError`` names each bad setting and what it must be.
        """
        values = {name: value for name, value in given.items() if value is not None}
        workers = values.get("workers")
        if isinstance(workers, bool) or (workers is not None and not isinstance(workers, int)):
            raise ConfigurationError(
                f"workers must be an int >= 0 (0: no background worker), got {workers!r}"
            )
        try:
            return cls(**values)
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (got {err['input']!r:.60})"
                for err in e.errors()
            )
            raise ConfigurationError(f"Runtime settings are invalid: {problems}") from None
