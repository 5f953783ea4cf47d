"""``sagakit serve`` run as a user runs it: a process serving the API with its own worker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from sagakit.cli import app

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_serve_starts_registered_sagas_and_runs_them(tmp_path: Path) -> None:
    # Given `sagakit serve` with the test sagas and a token
    port = free_port()
    env = {**os.environ, "SAGAKIT_API_TOKENS": "ops=tok", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "sagakit", "serve", "--db", f"sqlite:///{tmp_path}/s.db"]
    command += ["--port", str(port), "--app", "tests.web.sagas:sagas"]
    server = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": "Bearer tok"}
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        # When a saga is started over HTTP
        started = httpx.post(
            f"{base}/api/sagas", json={"saga_type": "order", "id": "http-1"}, headers=auth
        )
        assert started.status_code == 201, started.text
        # I expect the server's own worker to run it, and reads to need the token
        for _ in range(100):
            saga = httpx.get(f"{base}/api/sagas/http-1", headers=auth).json()
            if saga["status"] == "COMPLETED":
                break
            time.sleep(0.05)
        assert saga["status"] == "COMPLETED"
        assert httpx.get(f"{base}/api/sagas/http-1").status_code == 401
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=20)
    # a graceful shutdown on SIGTERM exits 0, not "killed by the signal"
    assert server.returncode == 0, err
    assert "Application shutdown complete" in err
    assert "reads token required; 1 token(s); workers 4" in " ".join(err.split())


def test_serve_refuses_to_bind_beyond_localhost_without_a_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SAGAKIT_API_TOKENS", raising=False)
    result = CliRunner().invoke(
        app, ["serve", "--db", f"sqlite:///{tmp_path}/s.db", "--host", "0.0.0.0"]
    )
    assert result.exit_code == 2
    assert "no API token is configured" in " ".join(result.output.split())


def test_serve_with_a_wrong_password_says_so_in_one_line(tmp_path: Path) -> None:
    # Given a database that refuses the password
    command = [sys.executable, "-m", "sagakit", "serve", "--port", str(free_port())]
    command += ["--db", "mysql://root:wrong-password@127.0.0.1:3306/test"]
    # When the server starts
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    # I expect one clear error before serving, no traceback, the password not shown
    assert result.returncode == 1, result.stderr
    assert "Access denied" in result.stderr and "Traceback" not in result.stderr
    assert "wrong-password" not in result.stderr
