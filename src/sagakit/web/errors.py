"""Turn sagakit's errors into HTTP answers that name what went wrong; never a 500.

A 422 always has FastAPI's validation shape (``detail[].loc`` names the field), so
clients parse one format for every bad input.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from ..errors import (
    ConcurrencyError,
    InvalidTransition,
    SagaNotFound,
    StoreError,
    UnknownSagaType,
)
from .inputs import InputError
from .security import ApiProblem

Handler = Callable[[Request, Exception], Awaitable[Response]]


class SafeJSONResponse(JSONResponse):
    """JSON that any client can read: non-ASCII escaped, so a lone surrogate a client sent
    (and an error message quotes) is written as ``\\ud800`` instead of failing the response.
    """

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def problem(status: int, detail: str, field: str | None = None, **headers: str) -> JSONResponse:
    """Return the JSON answer for a refused request."""
    if status == 422:
        loc = field.split(".") if field else ["body"]
        body: object = {"detail": [{"loc": loc, "msg": detail, "type": "value_error"}]}
    else:
        body = {"detail": detail, "field": field}
    return SafeJSONResponse(body, status_code=status, headers=headers or None)


async def _validation_error(request: Request, exc: Exception) -> Response:
    """FastAPI's 422 shape, without echoing the input (it may be huge or not UTF-8)."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    return SafeJSONResponse({"detail": errors}, status_code=422)


def _fixed(status: int, field: str | None) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        return problem(status, str(exc), field)

    return handle


async def _api_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiProblem)
    return problem(exc.status, exc.detail, exc.field, **exc.headers)


async def _input_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InputError)
    return problem(422, exc.message, exc.field)


async def _store_error(request: Request, exc: Exception) -> Response:
    return problem(503, f"the saga store failed: {exc}", None, **{"Retry-After": "5"})


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``; the most specific class wins."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ApiProblem, _api_problem)
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(SagaNotFound, _fixed(404, "path.saga_id"))
    app.add_exception_handler(UnknownSagaType, _fixed(404, "body.saga_type"))
    app.add_exception_handler(InvalidTransition, _fixed(409, "path.action"))
    app.add_exception_handler(ConcurrencyError, _fixed(409, "path.saga_id"))
    app.add_exception_handler(StoreError, _store_error)
