"""JSON log lines carry saga fields, from SagaLogging's lifecycle events and the engine's own logs."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import sagakit as sk
from sagakit.observability.logging import (
    JsonFormatter,
    SagaFieldsFilter,
    SagaLogging,
    json_logging,
)

from .conftest import PaymentDeclined, run_known


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """JSON lines of the ``sagakit`` logger, restored afterwards."""
    logger = logging.getLogger("sagakit")
    level, propagate = logger.level, logger.propagate
    stream = io.StringIO()
    handler = json_logging(logging.INFO, logger=logger, stream=stream)
    logger.propagate = False
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(level)
    logger.propagate = propagate


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_every_lifecycle_event_is_a_json_line_with_saga_fields(
    captured: io.StringIO, db_url: str
) -> None:
    # Given the known run logged by SagaLogging
    await run_known(db_url, SagaLogging())
    records = [r for r in lines(captured) if r["logger"] == "sagakit.lifecycle"]
    # I expect each saga's events, in order, with its id and type on every line
    a3 = [(r["event"], r.get("step"), r["level"]) for r in records if r["saga_id"] == "a3"]
    assert a3 == [
        ("saga_started", None, "INFO"),
        ("step_completed", "reserve", "INFO"),
        ("step_failed", "charge", "WARNING"),
        ("step_completed", "charge", "INFO"),
        ("step_completed", "ship", "INFO"),
        ("saga_finished", None, "INFO"),
    ]
    assert all(r["saga_type"] == "order" for r in records if r["saga_id"].startswith("a"))
    failed = next(r for r in records if r["saga_id"] == "a3" and r["event"] == "step_failed")
    assert failed["attempt"] == 1
    assert failed["will_retry"] is True
    assert failed["error_type"] == f"{PaymentDeclined.__module__}.PaymentDeclined"
    assert failed["message"].startswith("saga a3 (order): step charge attempt 1 failed")
    done = next(r for r in records if r["saga_id"] == "a3" and r["event"] == "saga_finished")
    assert done["status"] == "COMPLETED" and done["seconds"] >= 0


async def test_final_failures_log_at_error_and_outcomes_by_severity(
    captured: io.StringIO, db_url: str
) -> None:
    await run_known(db_url, SagaLogging())
    records = lines(captured)
    finished = {
        r["saga_id"]: (r["status"], r["level"], r.get("reason"))
        for r in records
        if r.get("event") == "saga_finished"
    }
    assert finished == {
        "a1": ("COMPLETED", "INFO", None),
        "a2": ("COMPLETED", "INFO", None),
        "a3": ("COMPLETED", "INFO", None),
        "a4": ("COMPENSATED", "WARNING", "error"),
        "a5": ("FAILED", "ERROR", "error"),
        "r1": ("COMPLETED", "INFO", None),
    }
    undo = [
        (r["attempt"], r["will_retry"], r["level"])
        for r in records
        if r["saga_id"] == "a5" and r.get("event") == "compensation_failed"
    ]
    assert undo == [(1, True, "WARNING"), (2, True, "WARNING"), (3, False, "ERROR")]
    # the engine's own FAILED log line carries the saga's fields too
    engine = [r for r in records if r["logger"] == "sagakit.engine"]
    assert [(r["level"], r["saga_id"], r["saga_type"], r["step"]) for r in engine] == [
        ("ERROR", "a5", "order", "reserve")
    ]


def test_json_logging_replaces_its_own_handler_instead_of_adding_one() -> None:
    logger = logging.getLogger("sagakit.tests.twice")
    first = json_logging(logger=logger, stream=io.StringIO())
    second = json_logging(logging.DEBUG, logger=logger, stream=io.StringIO())
    try:
        assert logger.handlers == [second] and first is not second
        assert logger.level == logging.DEBUG
    finally:
        logger.removeHandler(second)


def test_the_formatter_writes_exceptions_and_values_json_cannot_hold() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom %s", ("here",), None)
    record.saga_id, record.seconds = "s1", object()
    try:
        raise ValueError("bad")
    except ValueError:
        record.exc_info = sys.exc_info()
    doc = json.loads(JsonFormatter().format(record))
    assert doc["message"] == "boom here" and doc["saga_id"] == "s1"
    assert doc["seconds"].startswith("<object object")
    assert "ValueError: bad" in doc["exc_info"]
    assert "step" not in doc  # absent fields are left out


def test_the_filter_lets_text_formats_name_saga_fields() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(saga_id)s %(step)s %(message)s"))
    handler.addFilter(SagaFieldsFilter())
    logger = logging.getLogger("sagakit.tests.filter")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("plain")
        logger.warning("step", extra={"saga_id": "s1", "step": "pay"})
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue().splitlines() == ["None None plain", "s1 pay step"]


def test_percent_signs_in_names_do_not_break_the_message(caplog: Any) -> None:
    record = sk.SagaRecord(id="100%", saga_type="50%off", attempt=2)
    with caplog.at_level(logging.INFO, logger="sagakit.lifecycle"):
        SagaLogging().step_failed(record, "%s%d", RuntimeError("x"), will_retry=False)
    assert caplog.messages == [
        "saga 100% (50%off): step %s%d attempt 2 failed (no retry left): RuntimeError('x')"
    ]
