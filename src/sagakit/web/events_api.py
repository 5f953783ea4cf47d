"""``POST /api/events``: send an event to the state machines that take it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from ..errors import ConfigurationError, NotSerializable, SagaNotFound
from ..runtime import Runtime
from .inputs import check_json, check_text
from .schemas import Problem
from .security import ApiProblem, Operator
from .state import runtime_of

router = APIRouter(prefix="/api", tags=["events"])

RuntimeDep = Annotated[Runtime, Depends(runtime_of)]


class SendEvent(BaseModel):
    """An event for state machines; the same ``message_id`` twice is applied once."""

    model_config = ConfigDict(extra="forbid")

    event: str = Field(min_length=1, max_length=100, examples=["OrderSubmitted"])
    data: dict[str, Any] = Field(default_factory=dict, examples=[{"order_id": "o-1", "total": 10}])
    message_id: str | None = Field(None, min_length=1, max_length=200, examples=["m-1"])
    saga_id: str | None = Field(
        None, min_length=1, max_length=255, description="Send to this one instance."
    )


class DeliveryOut(BaseModel):
    """What one instance did with the event."""

    instance_id: str
    outcome: str = Field(examples=["applied"])
    state: str | None
    previous: str | None
    error: str | None


class SentEvent(BaseModel):
    """What became of the event at each machine that took it."""

    event: str
    message_id: str
    outcome: str = Field(description="The first fault among the deliveries, else the first.")
    deliveries: list[DeliveryOut]


@router.post(
    "/events",
    response_model=SentEvent,
    responses={
        code: {"model": Problem, "description": text}
        for code, text in {
            400: "The body is not JSON",
            401: "No token, or one that is not configured",
            403: "No tokens are configured on the server",
            404: "No state machine takes the event, or no such instance",
            503: "The database is unreachable",
        }.items()
    },
)
async def send_event(body: SendEvent, runtime: RuntimeDep, caller: Operator) -> SentEvent:
    """Deliver an event; each instance applies it in one transaction, at most once per id.

    A 422 (the validation shape) names what is wrong: a key the machine correlates by
    missing from ``data``, or a value no store can hold.
    """
    check_text(body.event, "body.event")
    check_json(body.data, "body.data")
    for name in ("message_id", "saga_id"):
        value = getattr(body, name)
        if value is not None:
            check_text(value, f"body.{name}")
    known = runtime.known_events()
    if body.saga_id is None and body.event not in known:
        raise ApiProblem(
            404,
            f"no state machine or wait_for step takes event {body.event!r} (events: "
            f"{', '.join(sorted(known)) or 'none; start the server with --app'})",
            "body.event",
        )
    try:
        result = await runtime.send(
            body.event, body.data, message_id=body.message_id, saga_id=body.saga_id
        )
    except SagaNotFound as e:
        raise ApiProblem(404, str(e), "body.saga_id") from e
    except (ConfigurationError, NotSerializable) as e:
        raise ApiProblem(422, str(e), "body.data") from e
    return SentEvent(
        event=result.event,
        message_id=result.message_id,
        outcome=result.outcome.value,
        deliveries=[
            DeliveryOut(
                instance_id=d.instance_id,
                outcome=d.outcome.value,
                state=d.state,
                previous=d.previous,
                error=d.error,
            )
            for d in result.deliveries
        ],
    )
