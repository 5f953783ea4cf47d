"""A worker process serves Prometheus metrics of what it ran, scraped over HTTP."""

from __future__ import annotations

import signal
import socket
import time
import urllib.request
from pathlib import Path

import sagakit as sk

from .harness import Lab, kill


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_worker_metrics_show_the_counts_of_a_known_run(tmp_path: Path) -> None:
    lab = Lab(tmp_path)
    try:
        lab.start("crashy", {"ok1": {}, "ok2": {}, "bad": {"fail": "s2"}})
        port = free_port()
        worker = lab.spawn("--metrics-port", str(port), "--json-logs")
        for saga_id in ("ok1", "ok2", "bad"):
            lab.wait_until(saga_id, [sk.SagaStatus.COMPLETED, sk.SagaStatus.COMPENSATED])
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    text = r.read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert 'saga_completed_total{saga_type="crashy"} 2.0' in text
        assert 'saga_compensated_total{reason="error",saga_type="crashy"} 1.0' in text
        assert 'saga_retries_total{saga_type="crashy",step_name="s2"} 2.0' in text
        assert '"saga_id": "bad"' in lab.output(worker)  # JSON logs carry saga fields
        kill(worker, signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        lab.cleanup()
