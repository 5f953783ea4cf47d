"""The REST API against SQLite and PostgreSQL, through httpx in-process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

import sagakit as sk
from sagakit.web import WebSettings, create_app

from .conftest import ALICE, client_for, populate
from .sagas import BROKEN, sagas


def field_of(response: httpx.Response) -> str:
    """The field a 4xx names, whatever its shape."""
    body = response.json()
    if isinstance(body["detail"], list):
        return ".".join(str(p) for p in body["detail"][0]["loc"])
    return str(body["field"])


async def test_start_is_idempotent_by_id(client: httpx.AsyncClient, runtime: sk.Runtime) -> None:
    # Given a saga started with an id
    body = {"saga_type": "order", "context": {"n": 7}, "id": "order-7"}
    first = await client.post("/api/sagas", json=body, headers=ALICE)
    # When the same start is sent again
    again = await client.post("/api/sagas", json=body, headers=ALICE)
    # I expect one saga: created once, then returned
    assert first.status_code == 201, first.text
    assert first.json()["created"] is True
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert again.json()["id"] == "order-7"
    final = await runtime.wait("order-7", timeout=10)
    assert final.status == sk.SagaStatus.COMPLETED
    started = [e for e in await runtime.history("order-7") if e.type == "saga_started"]
    assert len(started) == 1
    assert (started[0].actor, started[0].source_ip) == ("alice", "203.0.113.7")


async def test_start_refuses_what_it_cannot_run(client: httpx.AsyncClient) -> None:
    unknown = await client.post("/api/sagas", json={"saga_type": "nope"}, headers=ALICE)
    assert unknown.status_code == 404
    assert field_of(unknown) == "body.saga_type"
    assert "order" in unknown.json()["detail"]  # names what is registered

    not_a_dict = await client.post(
        "/api/sagas", json={"saga_type": "order", "context": [1]}, headers=ALICE
    )
    assert not_a_dict.status_code == 422
    assert field_of(not_a_dict) == "body.context"

    nul = await client.post(
        "/api/sagas", json={"saga_type": "order", "context": {"k": "a\x00b"}}, headers=ALICE
    )
    assert nul.status_code == 422
    assert field_of(nul) == "body.context.k"

    await client.post("/api/sagas", json={"saga_type": "order", "id": "x"}, headers=ALICE)
    other_type_body = {"saga_type": "order", "id": "x", "context": {}}
    assert (await client.post("/api/sagas", json=other_type_body, headers=ALICE)).status_code in (
        200,
        201,
    )
    too_long = await client.post(
        "/api/sagas", json={"saga_type": "order", "id": "i" * 256}, headers=ALICE
    )
    assert too_long.status_code == 422
    assert field_of(too_long) == "body.id"


async def test_changes_need_a_configured_token(runtime: sk.Runtime) -> None:
    body = {"saga_type": "order"}
    async with client_for(runtime) as c:
        assert (await c.post("/api/sagas", json=body)).status_code == 401
        wrong = await c.post("/api/sagas", json=body, headers={"Authorization": "Bearer no"})
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"] == "Bearer"
        # a cookie is good for reading pages, never for changing anything
        c.cookies.set("sagakit_token", "alice-token")
        assert (await c.post("/api/sagas", json=body)).status_code == 401
    async with client_for(runtime, tokens="") as c:
        none_configured = await c.post("/api/sagas", json=body, headers=ALICE)
        assert none_configured.status_code == 403
        assert "SAGAKIT_API_TOKENS" in none_configured.json()["detail"]


async def test_reads_can_be_closed(runtime: sk.Runtime) -> None:
    await populate(runtime)
    async with client_for(runtime) as c:  # with tokens configured, reads close by default
        assert (await c.get("/api/sagas")).status_code == 401
    async with client_for(runtime, tokens="") as c:  # a local server without tokens is open
        assert (await c.get("/api/sagas")).status_code == 200
    async with client_for(runtime, read_open=False) as c:
        assert (await c.get("/api/sagas")).status_code == 401
        assert (await c.get("/api/sagas/ok-1")).status_code == 401
        assert (await c.get("/sagas/ok-1")).status_code == 401  # the dashboard asks for a token
        assert (await c.get("/api/sagas", headers=ALICE)).status_code == 200
        c.cookies.set("sagakit_token", "bot-token")
        assert (await c.get("/sagas/ok-1")).status_code == 200
    async with client_for(runtime, read_open=True) as c:
        assert (await c.get("/api/sagas")).status_code == 200


async def test_list_filters_and_pages_with_a_cursor(
    client: httpx.AsyncClient, runtime: sk.Runtime
) -> None:
    await populate(runtime)
    for n in range(7):
        await runtime.start("order", {"n": n}, saga_id=f"bulk-{n}")
    for n in range(7):
        await runtime.wait(f"bulk-{n}", timeout=10)

    # When every page is followed
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        params: dict[str, str | int] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/sagas", params=params)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # I expect every saga once, newest first
    assert len(seen) == len(set(seen)) == 10
    assert seen[:2] == ["bulk-6", "bulk-5"]

    statuses = await client.get(
        "/api/sagas", params=[("status", "FAILED"), ("status", "COMPENSATED")]
    )
    assert {i["id"] for i in statuses.json()["items"]} == {"failed-3", "undone-2"}
    by_text = await client.get("/api/sagas", params={"id_contains": "bulk", "type": "order"})
    assert len(by_text.json()["items"]) == 7
    assert (await client.get("/api/sagas", params={"type": "other"})).json()["items"] == []
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await client.get("/api/sagas", params={"created_after": future})).json()["items"] == []
    old = await client.get("/api/sagas", params={"older_than": "1h"})
    assert old.json() == {"items": [], "next_cursor": None}
    recent = await client.get("/api/sagas", params={"newer_than": "1h"})
    assert len(recent.json()["items"]) == 10


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not-a-cursor"}, "query.cursor"),
        ({"older_than": "5 fortnights"}, "query.older_than"),
        ({"limit": 0}, "query.limit"),
        ({"status": "DONE"}, "query.status.0"),
        ({"created_after": "yesterday"}, "query.created_after"),
        ({"created_after": "0001-01-01T00:00:00+01:00"}, "query.created_after"),
        ({"id_contains": "a\x00"}, "query.id_contains"),
    ],
)
async def test_bad_list_input_names_the_field(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await client.get("/api/sagas", params=params)
    assert response.status_code == 422, response.text
    assert field_of(response) == field


async def test_one_saga_with_its_history(client: httpx.AsyncClient, runtime: sk.Runtime) -> None:
    await populate(runtime)
    saga = (await client.get("/api/sagas/failed-3")).json()
    assert saga["status"] == "FAILED"
    assert saga["context"]["undo_fails"] is True
    assert "warehouse offline" in saga["error_message"]
    types = [e["type"] for e in saga["events"]]
    assert types.count("compensation_failed") == 2
    assert types[-1] == "saga_failed"
    assert all(e["duration_ms"] is not None for e in saga["events"] if e["type"] == "step_failed")
    missing = await client.get("/api/sagas/nope")
    assert missing.status_code == 404
    assert field_of(missing) == "path.saga_id"


async def test_retry_a_failed_saga_after_fixing_the_cause(
    client: httpx.AsyncClient, runtime: sk.Runtime
) -> None:
    # Given a FAILED saga whose cause was fixed
    await populate(runtime)
    BROKEN["warehouse"] = False
    # When an operator retries it
    response = await client.post(
        "/api/sagas/failed-3/retry", json={"reason": "warehouse is back"}, headers=ALICE
    )
    # I expect its rollback to finish, with the operator in the audit trail
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "COMPENSATING"
    final = await runtime.wait("failed-3", timeout=10)
    assert final.status == sk.SagaStatus.COMPENSATED
    audit = [e for e in await runtime.history("failed-3") if e.type == "operator_retry"]
    assert [(e.actor, e.source_ip, e.reason) for e in audit] == [
        ("alice", "203.0.113.7", "warehouse is back")
    ]


async def test_actions_that_make_no_sense_are_refused(
    client: httpx.AsyncClient, runtime: sk.Runtime
) -> None:
    await populate(runtime)
    refused = await client.post("/api/sagas/ok-1/cancel", headers=ALICE)
    assert refused.status_code == 409
    assert "cannot cancel saga 'ok-1': it is COMPLETED" in refused.json()["detail"]
    assert (await client.post("/api/sagas/nope/retry", headers=ALICE)).status_code == 404
    unknown = await client.post("/api/sagas/ok-1/explode", headers=ALICE)
    assert unknown.status_code == 422
    assert field_of(unknown) == "path.action"
    no_token = await client.post("/api/sagas/failed-3/compensate")
    assert no_token.status_code == 401


async def test_pause_and_resume_with_a_slash_in_the_id(
    client: httpx.AsyncClient, runtime: sk.Runtime
) -> None:
    await runtime.start("order", {"n": 1}, saga_id="tenant/a?b#c")
    path = "/api/sagas/tenant%2Fa%3Fb%23c"
    paused = await client.post(f"{path}/pause", json={}, headers=ALICE)
    if paused.status_code == 409:  # the worker finished it first
        assert "COMPLETED" in paused.json()["detail"]
    else:
        assert paused.json()["status"] == "PAUSED"
        resumed = await client.post(f"{path}/resume", headers=ALICE)
        assert resumed.json()["status"] in ("PENDING", "RUNNING")
    assert (await client.get(path)).json()["id"] == "tenant/a?b#c"


async def test_stats_health_and_metrics(client: httpx.AsyncClient, runtime: sk.Runtime) -> None:
    await populate(runtime)
    stats = (await client.get("/api/stats")).json()
    assert stats["by_status"] == {"COMPLETED": 1, "COMPENSATED": 1, "FAILED": 1}
    assert stats["by_type"]["order"]["FAILED"] == 1
    assert stats["success_rate"] == pytest.approx(1 / 3)
    health = await client.get("/health")
    assert health.status_code == 200
    assert health.json()["ok"] is True
    assert health.json()["failed"] == 1
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "saga_running_current" in metrics.text


async def test_metrics_come_from_the_runtimes_own_hook(store_url: str) -> None:
    from sagakit.observability.metrics import SagaMetrics

    # Given a runtime whose hooks already count
    metrics = SagaMetrics()
    async with sk.Runtime(store_url, sagas=sagas(), hooks=[metrics]) as rt:
        app = create_app(rt, settings=WebSettings(read_open=True))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            # When a saga runs and Prometheus scrapes
            await rt.run("order", {"n": 1}, saga_id="m-1")
            scraped = await c.get("/metrics")
        # I expect that hook's counters, not a second set
        assert app.state.sagakit.metrics is metrics
        assert rt.hooks.hooks == [metrics]
        assert 'saga_completed_total{saga_type="order"} 1.0' in scraped.text


async def test_audit_queries_filter_by_reason_actor_and_event_type(
    client: httpx.AsyncClient, runtime: sk.Runtime
) -> None:
    # Given a declined saga started by bob and a completed one by alice
    await runtime.run("order", {"n": 1}, saga_id="a-1", actor="alice")
    await runtime.run("order", {"n": 2, "declined": True}, saga_id="b-2", actor="bob")
    # When the API is asked the audit questions
    by_reason = await client.get("/api/sagas", params={"reason": "error"})
    by_actor = await client.get("/api/sagas", params={"actor": "alice", "finished_since": "1h"})
    failures = await client.get("/api/events", params={"type": "step_failed", "since": "24h"})
    rollbacks = await client.get(
        "/api/events", params={"type": "compensation_started", "actor": "bob"}
    )
    # I expect each answered in one request
    assert [s["id"] for s in by_reason.json()["items"]] == ["b-2"]
    assert [s["id"] for s in by_actor.json()["items"]] == ["a-1"]
    assert {e["saga_id"] for e in failures.json()["items"]} == {"b-2"}
    assert [e["saga_id"] for e in rollbacks.json()["items"]] == ["b-2"]
    bad = await client.get("/api/sagas", params={"reason": "bogus"})
    assert bad.status_code == 422


async def test_bodies_over_the_limit_get_a_clear_413(runtime: sk.Runtime) -> None:
    async with client_for(runtime, read_open=True, max_body_bytes=64 * 1024) as c:
        # a 60 MB-like context (scaled down to the test's limit) and one with many keys
        big = {"saga_type": "order", "context": {"blob": "x" * 100_000}}
        many = {"saga_type": "order", "context": {f"k{i}": i for i in range(20_000)}}
        for body in (big, many):
            response = await c.post("/api/sagas", json=body, headers=ALICE)
            assert response.status_code == 413, response.text
            assert "accepts at most 65,536" in response.json()["detail"]
        small = await c.post("/api/sagas", json={"saga_type": "order"}, headers=ALICE)
        assert small.status_code == 201
