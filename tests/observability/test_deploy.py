"""The Grafana dashboard and Prometheus alerts use only metrics SagaMetrics exposes, and are valid."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import sagakit as sk
from sagakit.messaging.consumer import Consumer
from sagakit.observability.metrics import SagaMetrics

from .conftest import order_saga, refund_saga, run_known

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "sagakit-dashboard.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERT_TESTS = DEPLOY / "prometheus" / "alerts_test.yml"

#: PromQL words that look like metric names but are not.
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "group_left", "group_right", "inf", "nan"}
_LABEL_LISTS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")


def metric_names(expr: str) -> set[str]:
    """Return the metric names a PromQL expression (or Grafana ``label_values``) reads."""
    if found := re.fullmatch(r"\s*label_values\(\s*(\w+)\s*,\s*\w+\s*\)\s*", expr):
        return {found.group(1)}
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = _LABEL_LISTS.sub("", expr)  # label lists of aggregations and matching
    tokens = re.findall(r"(?<![\w$.])([A-Za-z_:][\w:]*)\b(?!\s*\()", expr)
    return {t for t in tokens if t.lower() not in _KEYWORDS}


def test_metric_names_finds_metrics_and_skips_functions_labels_and_keywords() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, saga_type) (rate(a_bucket{saga_type=~"$t"}'
        "[$__rate_interval]))) / on (saga_type) group_left max(b) > 1e-9 unless c offset 5m"
    )
    assert metric_names(expr) == {"a_bucket", "b", "c"}
    assert metric_names("label_values(saga_started_total, saga_type)") == {"saga_started_total"}


@pytest.fixture(scope="module")
def exposed(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Sample names a real SagaMetrics exposes after the known run and a refresh."""
    import asyncio

    async def scrape() -> set[str]:
        url = f"sqlite:///{tmp_path_factory.mktemp('deploy')}/s.db"
        metrics = SagaMetrics()
        await run_known(url, metrics)
        async with sk.Runtime(url, sagas=[order_saga(), refund_saga()]) as rt:
            await metrics.refresh(rt.store)
            # and a consumer given one message twice
            consumer = Consumer(rt.store, "billing", _ignore, hooks=metrics)
            message = sk.Envelope("orders.created", {"id": 1})
            await consumer(message)
            await consumer(message)
        await _machine_events(url, metrics)
        text = metrics.render().decode()
        return {line.split("{")[0].split()[0] for line in text.splitlines() if line[:1] != "#"}

    return asyncio.run(scrape())


async def _ignore(_message: sk.Envelope) -> None:
    return None


async def _machine_events(url: str, metrics: SagaMetrics) -> None:
    """Events into a state machine, one of them after another process's write (a conflict)."""
    from sagakit.machines.delivery import MachineDelivery
    from sagakit.machines.event import Event

    from ..machines.test_state_machines import counter_machine

    counter = counter_machine()
    async with sk.Runtime(url, sagas=[counter], workers=0, hooks=[metrics]) as rt:
        mine = MachineDelivery(rt.store, counter, {}, metrics)
        theirs = MachineDelivery(rt.store, counter, {}, metrics)
        await mine.deliver(Event("Add", {"key": "k"}))
        await theirs.deliver(Event("Add", {"key": "k"}))
        await mine.deliver(Event("Add", {"key": "k"}))  # from a stale row: refused, re-applied
        assert mine.conflicts == 1
        await metrics.refresh(rt.store, [counter.name])


def dashboard_exprs() -> list[str]:
    """Every query of the dashboard: panel targets and template variables."""
    doc = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
    for var in doc["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]
            exprs.append(query["query"] if isinstance(query, dict) else query)
    return exprs


def alert_rules() -> list[dict[str, Any]]:
    """Every rule of the alerts file."""
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_every_dashboard_query_reads_only_exposed_metrics(exposed: set[str]) -> None:
    exprs = dashboard_exprs()
    assert len(exprs) >= 6
    for expr in exprs:
        names = metric_names(expr)
        assert names, expr
        assert names <= exposed, (names - exposed, expr)


def test_the_dashboard_has_the_panels_operators_asked_for() -> None:
    doc = json.loads(DASHBOARD.read_text())
    titles = {p["title"] for p in doc["panels"]}
    assert {
        "Success rate",
        "Saga duration p95",
        "Sagas in flight",
        "Step failure rate",
        "Compensation rate",
        "Outbox backlog",
        "Oldest unpublished message",
        "Messages published and failed",
    } <= titles
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for panel in doc["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    # the in-flight gauge is read from one database by every process: max, never sum
    in_flight = [e for e in dashboard_exprs() if "saga_running_current" in e]
    assert in_flight and all(e.startswith("max by") for e in in_flight)
    # so are the outbox gauges
    backlog = [e for e in dashboard_exprs() if "saga_outbox_pending" in e or "_current" in e]
    assert backlog and all(e.startswith("max") for e in backlog)


def test_every_alert_reads_only_exposed_metrics(exposed: set[str]) -> None:
    rules = alert_rules()
    assert {r["alert"] for r in rules} >= {
        "SagaFailureRateHigh",
        "SagaStuck",
        "SagaCompensationRateHigh",
    }
    for rule in rules:
        names = metric_names(rule["expr"])
        assert names, rule["alert"]
        assert names <= exposed, (names - exposed, rule["alert"])
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert {"summary", "description"} <= set(rule["annotations"])


def promtool() -> str:
    """Return promtool's path; skip without it (fail under CI, which installs it)."""
    path = shutil.which("promtool")
    if path is None:
        message = "promtool not found; install it with `apt-get install -y prometheus`"
        if os.environ.get("CI"):
            pytest.fail(f"CI: {message}")
        pytest.skip(message)
    return path


def run_promtool(*args: str | Path) -> None:
    done = subprocess.run(
        [promtool(), *map(str, args)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_accepts_the_alert_rules() -> None:
    run_promtool("check", "rules", ALERTS)


def test_the_alerts_fire_when_they_should_and_not_otherwise() -> None:
    # alerts_test.yml feeds series to each alert: firing, pending and quiet cases
    run_promtool("test", "rules", ALERT_TESTS)


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    # Given each panel query as a recording rule, with Grafana's variables filled in
    exprs = [e for e in dashboard_exprs() if not e.startswith("label_values")]
    filled = [e.replace("$__rate_interval", "5m").replace("$saga_type", ".*") for e in exprs]
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(filled)],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(rules))
    # I expect promtool to parse them all
    run_promtool("check", "rules", path)
