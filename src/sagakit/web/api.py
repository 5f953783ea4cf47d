"""The REST API under ``/api``: list, read, start and act on sagas; summary statistics."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from ..admin import reports
from ..admin.operator import Action
from ..errors import ConfigurationError, NotSerializable
from ..runtime import Runtime
from ..status import Reason, SagaStatus
from ..store.records import EventQuery
from .inputs import age_cutoff, check_json, check_text
from .queries import SagaFilter, find_sagas
from .schemas import (
    ActionRequest,
    AuditEvent,
    EventPage,
    Problem,
    SagaDetail,
    SagaPage,
    SagaSummary,
    StartedSaga,
    StartSaga,
    StatsOut,
)
from .security import ApiProblem, Operator, Reader
from .state import runtime_of

router = APIRouter(prefix="/api", tags=["sagas"])

RuntimeDep = Annotated[Runtime, Depends(runtime_of)]

_DURATION = r"^\s*\d{1,9}\s*[smhdw]\s*$"


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "The body is not JSON",
        401: "No token, or one that is not configured",
        403: "No tokens are configured on the server",
        404: "No such saga (or saga type)",
        409: "The action does not apply to the saga's current state",
        503: "The database is unreachable",
    }
    return {code: {"model": Problem, "description": text[code]} for code in codes}


_READ = _problems(401, 503)


@router.get("/sagas", response_model=SagaPage, responses=_READ)
async def list_sagas(
    runtime: RuntimeDep,
    _caller: Reader,
    status: Annotated[
        list[SagaStatus] | None, Query(description="Only these statuses (repeatable).")
    ] = None,
    saga_type: Annotated[
        str | None, Query(alias="type", max_length=100, description="Only this saga type.")
    ] = None,
    id_contains: Annotated[
        str | None, Query(max_length=255, description="Text the saga id contains.")
    ] = None,
    created_after: Annotated[datetime | None, Query(description="Created after this time.")] = None,
    created_before: Annotated[
        datetime | None, Query(description="Created before this time.")
    ] = None,
    older_than: Annotated[
        str | None,
        Query(pattern=_DURATION, description="Created longer ago than this, e.g. 15m, 2h, 7d."),
    ] = None,
    newer_than: Annotated[
        str | None, Query(pattern=_DURATION, description="Created within this, e.g. 1h.")
    ] = None,
    reason: Annotated[
        list[Reason] | None,
        Query(description="Only these reasons (repeatable): error, timeout, cancelled, ..."),
    ] = None,
    actor: Annotated[
        str | None, Query(max_length=255, description="Only sagas started by this actor.")
    ] = None,
    finished_since: Annotated[
        str | None, Query(pattern=_DURATION, description="Finished within this, e.g. 24h.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Sagas per page.")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=2000, description="`next_cursor` of the previous page.")
    ] = None,
) -> SagaPage:
    """List sagas, newest first, a page at a time."""
    wanted = SagaFilter(
        statuses=status or (),
        saga_type=saga_type,
        id_contains=id_contains,
        created_after=created_after,
        created_before=created_before,
        older_than=older_than,
        newer_than=newer_than,
        reasons=reason or (),
        actor=actor,
        finished_since=finished_since,
        limit=limit,
        cursor=cursor,
    )
    page, next_cursor = await find_sagas(runtime.store, wanted)
    return SagaPage(items=[SagaSummary.of(r) for r in page], next_cursor=next_cursor)


@router.get("/events", response_model=EventPage, responses=_READ)
async def list_events(
    runtime: RuntimeDep,
    _caller: Reader,
    event_type: Annotated[
        list[str] | None,
        Query(alias="type", max_length=40, description="Only these event types (repeatable)."),
    ] = None,
    since: Annotated[
        str | None, Query(pattern=_DURATION, description="Only the last DURATION, e.g. 24h.")
    ] = None,
    saga_type: Annotated[
        str | None, Query(max_length=100, description="Only events of this saga type.")
    ] = None,
    actor: Annotated[
        str | None, Query(max_length=255, description="Only events caused by this actor.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Events to return.")] = 100,
) -> EventPage:
    """The audit trail across sagas, newest first: failures, rollbacks, operator actions."""
    query = EventQuery(
        types=tuple(check_text(t, "query.type") for t in event_type) if event_type else None,
        since=age_cutoff(since, "query.since") if since else None,
        saga_type=check_text(saga_type, "query.saga_type") if saga_type else None,
        actor=check_text(actor, "query.actor") if actor else None,
        limit=limit,
    )
    return EventPage(items=[AuditEvent.of(e) for e in await runtime.store.find_events(query)])


@router.get("/sagas/{saga_id:path}", response_model=SagaDetail, responses=_problems(401, 404, 503))
async def get_saga(saga_id: str, runtime: RuntimeDep, _caller: Reader) -> SagaDetail:
    """Return one saga with its context and full history."""
    record = await runtime.get(check_text(saga_id, "path.saga_id"))
    return SagaDetail.build(record, await runtime.store.events(record.id))


@router.post(
    "/sagas",
    status_code=201,
    response_model=StartedSaga,
    responses={
        200: {"model": StartedSaga, "description": "A saga with this id existed; it is returned"},
        **_problems(400, 401, 403, 404, 409, 503),
    },
)
async def start_saga(
    body: StartSaga, runtime: RuntimeDep, caller: Operator, response: Response
) -> StartedSaga:
    """Start a registered saga type with a JSON context; a worker runs it.

    Idempotent by ``id``: starting an id that exists returns that saga (200), never a
    second run.
    """
    check_text(body.saga_type, "body.saga_type")
    check_json(body.context, "body.context")
    if body.id is not None:
        check_text(body.id, "body.id")
    if body.saga_type not in runtime.sagas:
        known = ", ".join(sorted(runtime.sagas)) or "none; start the server with --app"
        raise ApiProblem(
            404,
            f"no saga type {body.saga_type!r} is registered (registered: {known})",
            "body.saga_type",
        )
    if body.id is not None:
        existing = await runtime.store.get(body.id)
        if existing is not None:
            if existing.saga_type != body.saga_type:
                raise ApiProblem(
                    409, f"saga {body.id!r} exists and is a {existing.saga_type!r}", "body.id"
                )
            response.status_code = 200
            return StartedSaga(**SagaSummary.of(existing).model_dump(), created=False)
    try:
        saga_id = await runtime.start(
            body.saga_type,
            body.context,
            saga_id=body.id,
            actor=caller.actor,
            source_ip=caller.source_ip,
        )
    except (ConfigurationError, NotSerializable) as e:
        raise ApiProblem(422, str(e), "body.context") from e
    record = await runtime.get(saga_id)
    return StartedSaga(**SagaSummary.of(record).model_dump(), created=True)


@router.post(
    "/sagas/{saga_id:path}/{action}",
    response_model=SagaSummary,
    responses=_problems(400, 401, 403, 404, 409, 503),
)
async def act_on_saga(
    saga_id: str,
    action: Action,
    runtime: RuntimeDep,
    caller: Operator,
    body: ActionRequest | None = None,
) -> SagaSummary:
    """Retry, compensate, cancel, pause or resume a saga; the token's name is the actor."""
    reason = body.reason if body else None
    record = await runtime.act(
        check_text(saga_id, "path.saga_id"),
        action,
        actor=caller.actor,
        reason=check_text(reason, "body.reason") if reason is not None else None,
        source_ip=caller.source_ip,
    )
    return SagaSummary.of(record)


@router.get("/stats", response_model=StatsOut, responses=_READ)
async def get_stats(runtime: RuntimeDep, _caller: Reader) -> StatsOut:
    """Counts by status and type, success rate and duration percentiles."""
    return StatsOut.of(await reports.stats(runtime.store))
