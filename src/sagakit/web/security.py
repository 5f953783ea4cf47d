"""Who is calling: bearer tokens named in settings; the name becomes the audit ``actor``.

Mutations need ``Authorization: Bearer <token>``. Reads need it too unless reads are
open; dashboard pages take the same header, or the ``sagakit_token`` cookie for reads only,
so a cross-site form can never act on a saga with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .state import web_state

#: Name of the cookie the dashboard keeps the token in, for page reads.
TOKEN_COOKIE = "sagakit_token"

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="A token from SAGAKIT_API_TOKENS; its name is recorded as the actor.",
)

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


class ApiProblem(Exception):
    """Refuse a request with ``status`` and a message naming ``field``."""

    def __init__(self, status: int, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field

    @property
    def headers(self) -> dict[str, str]:
        """Extra response headers (the bearer challenge on a 401)."""
        return {"WWW-Authenticate": "Bearer"} if self.status == 401 else {}


@dataclass(frozen=True, slots=True)
class Caller:
    """Who made a request: the token's name (if any) and the client's address."""

    actor: str | None
    source_ip: str | None


def _source_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _actor(request: Request, token: str | None, *, required: bool) -> str | None:
    settings = web_state(request).settings
    if token is None:
        if required:
            raise ApiProblem(
                401, "send a token as 'Authorization: Bearer <token>'", "header.Authorization"
            )
        return None
    name = settings.actor_for(token)
    if name is None:
        raise ApiProblem(
            401, "the bearer token is not one of SAGAKIT_API_TOKENS", "header.Authorization"
        )
    return name


async def reader(request: Request, credentials: Credentials) -> Caller:
    """Dependency: allow a read when reads are open or a valid token comes with it."""
    settings = web_state(request).settings
    cookie = request.cookies.get(TOKEN_COOKIE)
    token = credentials.credentials if credentials else unquote(cookie) if cookie else None
    if settings.reads_open:  # a stale token must not lock anyone out of open pages
        return Caller(settings.actor_for(token) if token else None, _source_ip(request))
    return Caller(_actor(request, token or None, required=True), _source_ip(request))


async def operator(request: Request, credentials: Credentials) -> Caller:
    """Dependency: allow a change only with a valid bearer token (never a cookie)."""
    if not web_state(request).settings.token_names():
        raise ApiProblem(
            403,
            "no API tokens are configured, so nobody may change sagas here; set "
            "SAGAKIT_API_TOKENS='name=token' on the server",
            "header.Authorization",
        )
    token = credentials.credentials if credentials else None
    return Caller(_actor(request, token, required=True), _source_ip(request))


Reader = Annotated[Caller, Depends(reader)]
Operator = Annotated[Caller, Depends(operator)]
