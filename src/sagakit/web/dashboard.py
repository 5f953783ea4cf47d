"""The dashboard: server-rendered pages for people, from the same reports as the API."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape

from ..admin import reports
from ..admin.operator import Action, applicable
from ..errors import SagaNotFound
from ..runtime import Runtime
from ..status import SagaStatus
from ..store.records import OutboxQuery, SagaQuery
from .inputs import InputError, check_text
from .machine_diagram import machine_diagram
from .queries import SagaFilter, find_sagas
from .security import ApiProblem, Caller, bearer, reader
from .state import runtime_of, web_state
from .timeline import build_timeline

router = APIRouter(include_in_schema=False)

RuntimeDep = Annotated[Runtime, Depends(runtime_of)]

#: Page headers: no inline script or style may run, so a stored value can never execute.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def _clock(value: datetime | None) -> str:
    return value.strftime("%H:%M:%S.%f")[:-3] if value else ""


def _ms(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.2f} ms" if value < 10 else f"{value:.0f} ms"


def _span(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def make_templates() -> Jinja2Templates:
    """Return the page templates; every value is HTML-escaped unless marked otherwise."""
    env = Environment(
        loader=PackageLoader("sagakit.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    env.filters["when"] = _when
    env.filters["clock"] = _clock
    env.filters["ms"] = _ms
    env.filters["span"] = _span
    env.filters["pretty"] = lambda value: json.dumps(value, indent=2, sort_keys=True, default=str)
    return Jinja2Templates(env=env)


def render(request: Request, name: str, status: int = 200, **values: Any) -> Response:
    """Render template ``name`` with ``values`` and the dashboard's security headers."""
    templates: Jinja2Templates = request.app.state.sagakit_templates
    values.setdefault("live", False)
    values["statuses"] = [s.value for s in SagaStatus]
    values.setdefault("actions", [a.value for a in Action])
    root = values["root"] = request.scope.get("root_path", "")
    values["saga_href"] = lambda saga_id: f"{root}/sagas/{quote(saga_id, safe='')}"
    # root-relative links: right under a mount point and behind a TLS-terminating proxy
    values["path_for"] = lambda name, **params: root + str(request.app.url_path_for(name, **params))
    return templates.TemplateResponse(
        request, name, values, status_code=status, headers=SECURITY_HEADERS
    )


async def page_reader(request: Request) -> Caller | Response:
    """Allow the page if reads are open or a valid token comes (header or cookie)."""
    try:
        return await reader(request, await bearer(request))
    except ApiProblem as e:
        return render(request, "message.html", e.status, title="Token needed", message=e.detail)


@router.get("/", response_class=HTMLResponse, name="overview")
async def overview(request: Request, runtime: RuntimeDep) -> Response:
    """Counts by status and type, success rate, recent failures and stuck sagas."""
    if isinstance(denied := await page_reader(request), Response):
        return denied
    stuck_after = timedelta(seconds=web_state(request).settings.stuck_after)
    stats = await reports.stats(runtime.store)
    failures = await runtime.store.list(SagaQuery(statuses=(SagaStatus.FAILED,), limit=10))
    stuck = await reports.stuck(runtime.store, stuck_after, limit=10)
    active = sum(stats.by_status.get(s.value, 0) for s in reports.ACTIVE)
    machines = {
        name: {
            state or "": n  # "": not created yet (no first event)
            for (status, state), n in (await runtime.store.count_by_state(name)).items()
            if status == SagaStatus.ACTIVE
        }
        for name in runtime.machines
    }
    return render(
        request,
        "overview.html",
        stats=stats,
        machines=machines,
        failures=failures,
        stuck=stuck,
        stuck_after=stuck_after,
        live=active > 0,
    )


def _statuses(values: list[str]) -> list[SagaStatus]:
    try:
        return [SagaStatus(v.strip().upper()) for v in values if v.strip()]
    except ValueError:
        valid = ", ".join(s.value for s in SagaStatus)
        raise InputError("status", f"status must be one of: {valid}") from None


@router.get("/sagas", response_class=HTMLResponse, name="saga_list")
async def saga_list(
    request: Request,
    runtime: RuntimeDep,
    status: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies defaults
    type: str = "",
    q: str = "",
    newer_than: str = "",
    older_than: str = "",
    cursor: str = "",
) -> Response:
    """A filterable list of sagas, newest first, 50 at a time."""
    if isinstance(denied := await page_reader(request), Response):
        return denied
    form = {"status": status, "type": type, "q": q, "newer_than": newer_than}
    form["older_than"] = older_than
    known_types = sorted({*runtime.sagas, *([type] if type else [])})
    try:
        wanted = SagaFilter(
            statuses=_statuses(status),
            saga_type=type or None,
            id_contains=q or None,
            newer_than=newer_than or None,
            older_than=older_than or None,
            cursor=cursor or None,
        )
        page, next_cursor = await find_sagas(runtime.store, wanted, prefix="")
    except InputError as e:
        return render(
            request, "list.html", 400, sagas=[], form=form, types=known_types, error=e.message
        )
    return render(
        request,
        "list.html",
        sagas=page,
        next_query=urlencode({**form, "cursor": next_cursor}, doseq=True) if next_cursor else None,
        form=form,
        types=known_types,
        live=any(not r.is_terminal for r in page),
    )


@router.get("/machines/{machine_name}", response_class=HTMLResponse, name="machine_page")
async def machine_page(request: Request, machine_name: str, runtime: RuntimeDep) -> Response:
    """One state machine: its states and transitions drawn, with counts per state."""
    if isinstance(denied := await page_reader(request), Response):
        return denied
    machine = runtime.machines.get(machine_name)
    if machine is None:
        known = ", ".join(sorted(runtime.machines)) or "none"
        message = f"no state machine {machine_name!r} is registered (registered: {known})"
        return render(request, "message.html", 404, title="No such state machine", message=message)
    diagram = await machine_diagram(runtime.store, machine)
    return render(request, "machine.html", machine=machine, diagram=diagram)


@router.get("/sagas/{saga_id:path}", response_class=HTMLResponse, name="saga_page")
async def saga_page(request: Request, saga_id: str, runtime: RuntimeDep) -> Response:
    """One saga: context, timeline, the messages it published and their delivery, history."""
    if isinstance(denied := await page_reader(request), Response):
        return denied
    try:
        record = await runtime.get(check_text(saga_id, "saga_id"))
    except (SagaNotFound, InputError) as e:
        return render(request, "message.html", 404, title="No such saga", message=str(e))
    events = await runtime.store.events(record.id)
    messages = await runtime.store.list_outbox(OutboxQuery(saga_id=record.id, limit=200))
    machine = runtime.machines.get(record.saga_type) if record.kind == "state_machine" else None
    diagram = (
        await machine_diagram(runtime.store, machine, current=record.current_step, highlight=True)
        if machine is not None
        else None
    )
    return render(
        request,
        "saga.html",
        saga=record,
        events=events,
        messages=list(reversed(messages)),  # in the order the saga wrote them
        timeline=build_timeline(events),
        diagram=diagram,
        live=not record.is_terminal,
        actions=[a.value for a in applicable(record)],
    )
