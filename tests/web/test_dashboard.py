"""Dashboard pages rendered in-process: content, escaping, headers, mounting."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

import sagakit as sk
from sagakit.web import WebSettings, create_app

from .conftest import ALICE, client_for, populate

XSS = "<script>window.pwned=1</script>"


async def test_overview_counts_and_failures(client: httpx.AsyncClient, runtime: sk.Runtime) -> None:
    await populate(runtime)
    page = await client.get("/")
    assert page.status_code == 200
    assert "33.3%" in page.text  # success rate: 1 completed of 3 finished
    assert 'href="/sagas/failed-3"' in page.text  # listed under recent failures
    assert "default-src 'self'" in page.headers["content-security-policy"]


async def test_list_filters_by_status(client: httpx.AsyncClient, runtime: sk.Runtime) -> None:
    await populate(runtime)
    page = await client.get("/sagas", params=[("status", "FAILED"), ("status", "completed")])
    assert page.status_code == 200
    ids = set(re.findall(r'href="/sagas/([^"]+)"', page.text))
    assert ids == {"failed-3", "ok-1"}
    bad = await client.get("/sagas", params={"status": "DONE", "older_than": "x"})
    assert bad.status_code == 400
    assert "status must be one of" in bad.text


async def test_saga_page_draws_the_timeline(client: httpx.AsyncClient, runtime: sk.Runtime) -> None:
    await populate(runtime)
    page = await client.get("/sagas/failed-3")
    assert page.status_code == 200
    html = page.text
    assert html.count('class="bar step-ok"') == 1  # reserve
    assert html.count('class="bar step-failed"') == 1  # charge, declined
    assert html.count('class="bar compensation-failed"') == 2  # release, twice
    assert "<details" in html
    assert "warehouse offline &lt;b&gt;bold&lt;/b&gt;" in html  # error text escaped
    # a FAILED saga offers exactly what applies to it
    for action in ("retry", "compensate"):
        assert f'data-action="{action}"' in html
    for action in ("cancel", "pause", "resume"):
        assert f'data-action="{action}"' not in html
    assert (await client.get("/sagas/nope")).status_code == 404


async def test_saga_page_shows_its_messages_and_their_delivery(
    client: httpx.AsyncClient, runtime: sk.Runtime
) -> None:
    await populate(runtime)
    # Given one message published (the broker confirmed it) and one dead
    from sagakit.store.records import OutboxQuery, utcnow

    rows = {m.saga_id: m for m in await runtime.store.list_outbox(OutboxQuery())}
    await runtime.store.outbox_published([rows["ok-1"].id or 0], at=utcnow())
    await runtime.store.outbox_failed(
        rows["undone-2"].id or 0, error="no <route>", retry_at=None, now=utcnow()
    )
    # I expect each saga's page to say where its message is
    ok = (await client.get("/sagas/ok-1")).text
    assert "<h2>Messages</h2>" in ok and "stock.reserved" in ok
    assert 'class="msg-published"' in ok and rows["ok-1"].message_id in ok
    assert "&lt;i&gt;kept&lt;/i&gt;" in ok  # the payload escaped
    dead = (await client.get("/sagas/undone-2")).text
    assert 'class="msg-dead"' in dead and "no &lt;route&gt;" in dead
    assert "sagakit outbox retry" in dead


async def test_context_values_are_escaped(client: httpx.AsyncClient, runtime: sk.Runtime) -> None:
    await runtime.run("order", {"note": XSS, XSS: 1}, saga_id=f"x{XSS}")
    page = await client.get("/sagas/x%3Cscript%3Ewindow.pwned%3D1%3C%2Fscript%3E")
    assert page.status_code == 200
    assert XSS not in page.text
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in page.text
    listing = await client.get("/sagas")
    assert XSS not in listing.text


async def test_mounted_in_another_app_opens_the_runtime_itself(store_url: str) -> None:
    # Given a runtime nobody opened, mounted under /ops (sub-app lifespans do not run)
    runtime = sk.Runtime(store_url, sagas=[], workers=0)
    web = create_app(runtime, settings=WebSettings(read_open=True))
    parent = FastAPI()
    parent.mount("/ops", web)
    transport = httpx.ASGITransport(app=parent)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            # When it is asked for
            listing = await c.get("/ops/api/sagas")
            page = await c.get("/ops/")
        # I expect it to answer, with links under the mount point
        assert listing.json() == {"items": [], "next_cursor": None}
        assert 'href="/ops/sagas"' in page.text
        assert "/ops/static/dashboard.css" in page.text
    finally:
        await web.state.sagakit.close()


async def test_pages_accept_the_bearer_header_the_token_page_asks_for(
    runtime: sk.Runtime,
) -> None:
    # Given a server whose reads need a token
    async with client_for(runtime, read_open=False) as closed:
        # When a page is asked for without, then with the header
        denied = await closed.get("/")
        allowed = await closed.get("/", headers=ALICE)
        wrong = await closed.get("/", headers={"Authorization": "Bearer nope"})
    # I expect the token page first, which names the header, then the page itself
    assert denied.status_code == 401 and "Authorization: Bearer" in denied.text
    assert allowed.status_code == 200 and "success rate" in allowed.text.lower()
    assert wrong.status_code == 401
