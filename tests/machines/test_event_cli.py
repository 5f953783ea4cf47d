"""``sagakit send`` and ``sagakit redeliver`` as an operator types them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def sagakit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sagakit", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},  # tables unfolded, one row per line
    )


def test_send_applies_an_event_once_and_show_lists_the_transition(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/s.db"
    app = ("--app", "tests.machines.shopapp:definitions", "--db", db)
    data = json.dumps({"order_id": "o-9", "total": 4})
    sent = sagakit("send", "OrderSubmitted", "--data", data, "--message-id", "m9", "--json", *app)
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout) == {
        "instance": "order:o-9",
        "outcome": "applied",
        "state": "Submitted",
        "error": None,
    }
    again = sagakit("send", "OrderSubmitted", "--data", data, "--message-id", "m9", "--json", *app)
    assert json.loads(again.stdout)["outcome"] == "duplicate"
    # an event the state does not take is reported, with a failing exit status
    shipped = sagakit("send", "OrderShipped", "--data", '{"order_id": "o-9"}', *app)
    assert shipped.returncode == 1 and "unhandled" in shipped.stdout
    listed = sagakit(
        "list", "--db", db, "--kind", "state_machine", "--state", "Submitted", "--json"
    )
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == ["order:o-9"]
    shown = sagakit("show", "order:o-9", "--db", db)
    assert "(new) -> Submitted" in shown.stdout and "event_unhandled" in shown.stdout


def test_send_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    app = ("--app", "tests.machines.shopapp:definitions", "--db", f"sqlite:///{tmp_path}/s.db")
    bad_json = sagakit("send", "OrderSubmitted", "--data", "{nope", *app)
    assert bad_json.returncode == 2 and "--data is not JSON" in bad_json.stderr
    no_key = sagakit("send", "OrderSubmitted", "--data", '{"total": 1}', *app)
    assert no_key.returncode == 2 and "'order_id'" in no_key.stderr
    assert "Traceback" not in no_key.stderr + bad_json.stderr
    unknown = sagakit("send", "Nope", *app)
    assert (
        unknown.returncode == 2
        and "no registered state machine or wait_for step takes event" in unknown.stderr
    )
    nothing = sagakit("redeliver", "order:none", *app)
    assert nothing.returncode != 0 and "Traceback" not in nothing.stderr
