"""Restate: the same 5-step workload as a Restate service, invoked over its HTTP ingress.

Restate keeps its journal in its own durable log, not in our database, so the case
compares sagas/s and latency, not statements. Each case starts a fresh ``restate-server``
(the npm package ``@restatedev/restate-server``, its default, durable configuration) on a
data directory of its own, serves ``bench.restate_service`` with Hypercorn in a second
process, registers it, and drives ``sagas`` invocations through the ingress with httpx,
``in_flight`` at a time. The server binary is looked up in ``$SAGAKIT_BENCH_RESTATE``,
``bench/restate/node_modules`` (``make bench`` installs it there) and ``PATH``; without
it the case reports why it did not run.
"""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.context import CaseContext
from bench.drive import drive_async
from bench.stats import latency_ms, rate
from bench.workload import STEPS

ROOT = Path(__file__).resolve().parents[2]
#: Overrides where the ``restate-server`` binary is found.
SERVER_ENV = "SAGAKIT_BENCH_RESTATE"
#: Seconds to wait for the server, the service and the first invocation.
READY_SECONDS = 60.0


def server_binary() -> Path | None:
    """The ``restate-server`` binary to run, or ``None`` if none is installed here."""
    if os.environ.get(SERVER_ENV):
        return Path(os.environ[SERVER_ENV])
    arch = {"x86_64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), "")
    system = {"Linux": "linux", "Darwin": "darwin"}.get(platform.system(), "")
    package = ROOT / "bench" / "restate" / "node_modules" / "@restatedev"
    local = package / f"restate-server-{system}-{arch}" / "bin" / "restate-server"
    if local.exists():
        return local
    found = shutil.which("restate-server")
    return Path(found) if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _processes(workdir: Path, binary: Path) -> Iterator[dict[str, str]]:
    """A fresh Restate server and the service's Hypercorn process; their addresses."""
    ports = {name: _free_port() for name in ("ingress", "admin", "node", "service")}
    env = {
        **os.environ,
        "RESTATE_INGRESS__BIND_ADDRESS": f"127.0.0.1:{ports['ingress']}",
        "RESTATE_ADMIN__BIND_ADDRESS": f"127.0.0.1:{ports['admin']}",
        "RESTATE_BIND_ADDRESS": f"127.0.0.1:{ports['node']}",
        "RESTATE_ADVERTISED_ADDRESS": f"http://127.0.0.1:{ports['node']}",
    }
    log = (workdir / "restate.log").open("wb")
    server = subprocess.Popen(
        [str(binary), "--base-dir", str(workdir / "restate-data")],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    service_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    service = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hypercorn",
            "bench.restate_service:app",
            "--bind",
            f"127.0.0.1:{ports['service']}",
            "--log-level",
            "WARNING",
        ],
        env=service_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield {
            "ingress": f"http://127.0.0.1:{ports['ingress']}",
            "admin": f"http://127.0.0.1:{ports['admin']}",
            "service": f"http://127.0.0.1:{ports['service']}",
        }
    finally:
        for process in (service, server):
            process.terminate()
        for process in (service, server):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


async def _until(check: Any, what: str) -> Any:
    """Retry ``check()`` until it returns a value; ``TimeoutError`` naming ``what``."""
    import httpx

    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_SECONDS
    while True:
        try:
            result = await check()
            if result is not None:
                return result
        except httpx.HTTPError:
            pass
        if loop.time() > deadline:
            raise TimeoutError(f"Restate: {what} not ready after {READY_SECONDS:.0f}s")
        await asyncio.sleep(0.1)


async def restate_run(ctx: CaseContext) -> dict[str, Any]:
    """Run ``sagas`` invocations of the 5-step service, ``in_flight`` at a time."""
    import httpx

    binary = server_binary()
    if binary is None:
        return {
            "error": "no restate-server here: make bench installs it into bench/restate "
            f"with npm, or set ${SERVER_ENV}"
        }
    n, in_flight, warmup = ctx.number("sagas"), ctx.number("in_flight"), ctx.number("warmup")
    limits = httpx.Limits(max_connections=max(in_flight, 1), max_keepalive_connections=in_flight)
    with _processes(ctx.workdir, binary) as at:
        async with httpx.AsyncClient(timeout=60.0, limits=limits) as client:

            async def healthy() -> bool | None:
                return (await client.get(f"{at['admin']}/health")).status_code == 200 or None

            async def registered() -> bool | None:
                body = {"uri": at["service"], "force": True}
                response = await client.post(f"{at['admin']}/deployments", json=body)
                return response.status_code in (200, 201) or None

            url = f"{at['ingress']}/bench_noop5/run"

            async def run_one(i: int) -> None:
                response = await client.post(url, json={"i": i})
                if response.status_code != 200:
                    raise RuntimeError(f"Restate answered {response.status_code}: {response.text}")

            async def answered() -> bool | None:
                return (await client.post(url, json={"i": -1})).status_code == 200 or None

            await _until(healthy, "the server")
            await _until(registered, "the service's registration")
            await _until(answered, "the first invocation")
            await drive_async(run_one, warmup, in_flight, first=-warmup)
            timing = await drive_async(run_one, n, in_flight)
    return {
        "restate_server": subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, check=False
        ).stdout.strip(),
        "restate_sdk": version("restate-sdk"),
        "in_flight": in_flight,
        "sagas": n,
        "steps": n * STEPS,
        "seconds": round(timing.seconds, 4),
        "sagas_per_s": rate(n, timing.seconds),
        "steps_per_s": rate(n * STEPS, timing.seconds),
        "saga_latency_ms": latency_ms(timing.latencies),
    }
