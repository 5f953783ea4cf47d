"""Settings of the HTTP API and dashboard: API tokens and whether reads need one.

``SAGAKIT_API_TOKENS="alice=s3cret,deploy-bot=0t8e…"`` names each token; the name is
what the audit trail records as the ``actor``. ``SAGAKIT_API_READ_OPEN=true`` lets
anyone read sagas; ``false`` asks for a token on every read too.
"""

from __future__ import annotations

import hmac
import ipaddress

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..errors import ConfigurationError

#: Hosts that only this machine can reach; binding elsewhere without a token is refused.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class WebSettings(BaseSettings):
    """Who may act on sagas through the API, and whether reading needs a token.

    ``read_open`` left unset means: reads are open while no token is configured (a
    local dashboard just works) and closed once any token is.
    """

    model_config = SettingsConfigDict(env_prefix="SAGAKIT_API_", extra="ignore")

    tokens: SecretStr = Field(
        SecretStr(""), description="comma-separated name=token pairs, e.g. alice=s3cret"
    )
    read_open: bool | None = Field(None, description="reads without a token (default: no tokens)")
    stuck_after: float = Field(3600.0, gt=0, description="seconds without progress = stuck")
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="largest request body accepted (413 beyond)"
    )

    def token_names(self) -> dict[str, str]:
        """Return ``{token: name}``; raise ``ConfigurationError`` on a malformed pair."""
        found: dict[str, str] = {}
        raw = self.tokens.get_secret_value()
        for position, pair in enumerate(p.strip() for p in raw.split(",")):
            if not pair:
                continue
            name, sep, token = (part.strip() for part in pair.partition("="))
            if not sep or not name or not token:
                raise ConfigurationError(
                    f"SAGAKIT_API_TOKENS entry {position + 1} is not name=token "
                    "(e.g. SAGAKIT_API_TOKENS='alice=s3cret,ci=0t8e'); the value is not shown"
                )
            found[token] = name
        return found

    @property
    def reads_open(self) -> bool:
        """Tell whether reads are allowed without a token."""
        return self.read_open if self.read_open is not None else not self.token_names()

    def actor_for(self, token: str) -> str | None:
        """Return the name of ``token``, or None; compares in constant time."""
        name = None
        for known, known_name in self.token_names().items():
            if hmac.compare_digest(known.encode(), token.encode()):
                name = known_name
        return name


def load_settings(**overrides: object) -> WebSettings:
    """Read the settings from the environment; raise ``ConfigurationError`` naming the field."""
    try:
        settings = WebSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as e:
        problems = "; ".join(
            f"SAGAKIT_API_{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in e.errors()
        )
        raise ConfigurationError(f"web settings are invalid: {problems}") from None
    settings.token_names()  # fail now, not on the first request
    return settings


def is_local_host(host: str) -> bool:
    """Tell whether binding ``host`` keeps the server reachable from this machine only."""
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
