"""A real browser on the dashboard: find a FAILED saga, retry it with a token, watch it finish.

Drives Debian's Chromium through Playwright against uvicorn on a free localhost port;
the server's Runtime has a worker, so the retried rollback runs there.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

import sagakit as sk
from sagakit.web import WebSettings, create_app

from ..servers import unavailable
from .conftest import TOKENS, populate
from .sagas import BROKEN, sagas

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
XSS = "<script>window.pwned=1</script>"


class Server:
    """uvicorn serving ``app`` in a thread, on a port the OS picks."""

    def __init__(self, app: object) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")  # type: ignore[arg-type]
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture
def base_url(tmp_path: Path) -> Iterator[str]:
    """A server over an SQLite file holding a FAILED saga whose cause is then fixed."""
    if shutil.which(CHROMIUM) is None:  # skip on a laptop without it, fail in CI
        unavailable("Chromium at /usr/bin/chromium (apt-get install chromium)", FileNotFoundError())
    url = f"sqlite:///{tmp_path}/sagas.db"

    async def prepare() -> None:
        async with sk.Runtime(url, sagas=sagas(), workers=1, poll_interval=0.05) as rt:
            await populate(rt)
            await rt.run("order", {"note": XSS, "n": 4}, saga_id="xss-4")

    asyncio.run(prepare())
    BROKEN["warehouse"] = False  # the warehouse is back: the rollback can now succeed
    runtime = sk.Runtime(url, sagas=sagas(), workers=2, poll_interval=0.1)
    app = create_app(runtime, settings=WebSettings(tokens=TOKENS))  # type: ignore[arg-type]
    with Server(app) as base:
        yield base


@pytest.fixture
def page(base_url: str) -> Iterator[object]:
    """A Chromium page; the server (and its database) is set up first, outside Playwright's loop."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        yield context.new_page()
        context.close()
        browser.close()


def test_retry_a_failed_saga_from_the_dashboard(
    page: object, base_url: str, tmp_path: Path
) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    # Given the dashboard (reads are closed: tokens are configured)
    page.goto(base_url + "/")
    expect(page.get_by_role("heading", name="Token needed")).to_be_visible()
    page.click("#token-button")
    page.fill("#token-input", "alice-token")
    page.click("#token-form button[type=submit]")
    page.reload()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)

    # When I find the FAILED saga from the overview's recent failures
    page.get_by_role("link", name="failed-3").first.click()
    expect(page.locator("#saga-status")).to_contain_text("FAILED")
    expect(page.locator("rect.compensation-failed")).to_have_count(2)
    expect(page.locator("rect.step-failed")).to_have_count(1)
    page.locator("details.bar-error summary").last.click()  # the last failed compensation
    expect(page.locator("details.bar-error pre").last).to_contain_text("warehouse offline")

    # and retry it with a reason, confirming in the dialog
    page.click("button[data-action=retry]")
    expect(page.locator("#action-dialog")).to_be_visible()
    expect(page.locator("#action-token")).to_have_value("alice-token")  # kept for the tab
    page.fill("#action-reason", "warehouse is back")
    page.click("#action-confirm")

    # I expect the page to follow the saga to COMPENSATED, with the operator in its history
    expect(page.locator("#saga-status")).to_contain_text("COMPENSATED", timeout=20_000)
    expect(page.locator("rect.compensation-ok")).to_have_count(1)
    audit = page.locator("tr.ev-operator_retry")
    expect(audit).to_contain_text("alice")
    expect(audit).to_contain_text("warehouse is back")
    page.screenshot(path=str(tmp_path / "saga-retried.png"), full_page=True)

    # and only the actions that make sense for a finished saga are offered
    expect(page.locator("button[data-action=resume]")).to_have_count(0)
    expect(page.locator("button[data-action=retry]")).to_have_count(0)


def test_context_values_render_as_text(page: object, base_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.context.add_cookies([{"name": "sagakit_token", "value": "bot-token", "url": base_url}])
    page.goto(base_url + "/sagas?status=COMPLETED&status=FAILED")
    page.screenshot(path=str(tmp_path / "list.png"), full_page=True)
    page.goto(base_url + "/sagas?q=xss")
    page.get_by_role("link", name="xss-4").click()
    expect(page.locator("#context")).to_contain_text(XSS)
    assert page.evaluate("window.pwned") is None
    page.screenshot(path=str(tmp_path / "saga-xss.png"), full_page=True)


@pytest.fixture
def machine_url(tmp_path: Path) -> Iterator[str]:
    """A server over orders in every state: one shipped, one paid, one just submitted."""
    if shutil.which(CHROMIUM) is None:
        unavailable("Chromium at /usr/bin/chromium (apt-get install chromium)", FileNotFoundError())
    from ..machines.test_state_machines import order_machine, shipping_saga

    url = f"sqlite:///{tmp_path}/orders.db"
    definitions = [order_machine(), shipping_saga([])]

    async def prepare() -> None:
        async with sk.Runtime(url, sagas=definitions, workers=0) as rt:
            for key in ("o-1", "o-2", "o-3"):
                await rt.send("OrderSubmitted", {"order_id": key, "total": 1})
            for key in ("o-1", "o-2"):
                await rt.send("PaymentCaptured", {"order_id": key})
            await rt.send("OrderShipped", {"order_id": "o-1"})

    asyncio.run(prepare())
    runtime = sk.Runtime(url, sagas=definitions, workers=0)
    app = create_app(runtime, settings=WebSettings(read_open=True))  # type: ignore[arg-type]
    with Server(app) as base:
        yield base


def test_a_machine_is_drawn_with_its_states_transitions_and_counts(
    machine_url: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        # the overview lists the machine's active instances by state
        page.goto(machine_url + "/")
        expect(page.locator("table.machines")).to_contain_text("Paid 1")
        page.locator("table.machines").get_by_role("link", name="order", exact=True).click()
        # its page draws every state, and the transitions the instances made, counted
        states = page.locator("svg.machine g.state")
        expect(states).to_have_count(4)  # the start node and three states
        expect(page.locator("svg.machine g.state[data-state=Paid]")).to_contain_text("1 active")
        labels = page.locator("svg.machine text.transition-label")
        expect(labels.filter(has_text="OrderSubmitted (3)")).to_have_count(1)
        expect(labels.filter(has_text="PaymentCaptured (2)")).to_have_count(1)
        # the timeout never fired: it is listed under Submitted as handled, not drawn
        expect(page.locator("g.state[data-state=Submitted] text.handles")).to_contain_text(
            "on PaymentTimeout"
        )
        page.screenshot(path=str(tmp_path / "machine.png"), full_page=True)
        # an instance's page highlights its current state
        page.goto(machine_url + "/sagas/order%3Ao-2")
        expect(page.locator("#instance-state")).to_have_text("Paid")
        expect(page.locator("svg.machine g.state.current")).to_have_attribute("data-state", "Paid")
        browser.close()
