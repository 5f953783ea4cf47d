"""Reading export lines back: every field of every saga and event checked before import.

A bad line names its number and the field, so an operator can fix the file; nothing from
a file with a bad line is imported. The checks mirror what the engine and the stores rely
on, so an imported saga can never stop a worker (a ``version`` of ``"abc"``, a
``step_index`` of 10^12, a NaN, a lone surrogate).
"""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import datetime
from typing import Any

from ..errors import ConfigurationError
from ..plain import data_problem, describe_problem, text_problem
from ..status import Reason, SagaStatus
from ..store.records import SagaEvent, SagaRecord

#: Largest counters an import accepts: far beyond real sagas, far below overflow.
MAX_COUNTER = 2**31 - 1
#: Most steps a saga definition can have, and so the largest ``step_index``.
MAX_STEPS = 10_000

_SAGA_FIELDS = frozenset(f.name for f in fields(SagaRecord))
_EVENT_FIELDS = frozenset(f.name for f in fields(SagaEvent))
_REQUIRED = ("id", "saga_type", "status", "data", "version", "created_at", "updated_at")
#: Text columns and their widths in the schema (None: unbounded text).
_SAGA_TEXT = {
    "id": 255,
    "saga_type": 100,
    "current_step": 100,
    "lease_owner": 100,
    "definition_hash": 64,
    "error_type": 255,
    "error_message": None,
    "error_stack": None,
}
_SAGA_COUNTERS = {
    "step_index": MAX_STEPS,
    "attempt": MAX_COUNTER,
    "crashes": MAX_COUNTER,
    "version": MAX_COUNTER,
}
_SAGA_TIMES = (
    "next_attempt_at",
    "timeout_at",
    "lease_expires_at",
    "created_at",
    "updated_at",
    "completed_at",
    "archived_at",
)
_EVENT_TEXT = {"type": 40, "step": 100, "actor": 255, "source_ip": 64, "reason": None}
_KINDS = ("orchestrated", "state_machine", "mailbox")


class BadLine(ConfigurationError):
    """A line of an import file is not a saga; the message names the line and the field."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON can hold")


def _load(text: str, where: str) -> Any:
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as e:
        raise BadLine(f"{where}: not JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise BadLine(f"{where}: JSON nested too deeply to read") from None
    except ValueError as e:
        raise BadLine(f"{where}: {e}") from None


class _Checker:
    """Checks one line's values, naming ``line N: saga.field`` in every refusal."""

    def __init__(self, where: str) -> None:
        self.where = where

    def bad(self, field: str, why: str) -> BadLine:
        return BadLine(f"{self.where}: {field} {why}")

    def text(self, value: Any, field: str, width: int | None, *, optional: bool) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str) or (not value and not optional):
            raise self.bad(field, f"must be {'a' if optional else 'a non-empty'} string")
        if width is not None and len(value) > width:
            raise self.bad(field, f"is {len(value)} characters long; at most {width} fit")
        why = text_problem(value)
        if why is not None:
            raise self.bad(field, why)
        return value

    def counter(self, value: Any, field: str, top: int, *, optional: bool = False) -> int | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.bad(field, f"must be a whole number, got {value!r:.40}")
        if not 0 <= value <= top:
            raise self.bad(field, f"must be between 0 and {top}, got {value}")
        return value

    def time(self, value: Any, field: str) -> datetime | None:
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise self.bad(field, f"{value!r:.40} is not an ISO 8601 time") from None
        if parsed.tzinfo is None:
            raise self.bad(field, f"{value!r:.40} has no UTC offset; add +00:00")
        return parsed

    def data(self, value: Any, field: str, *, optional: bool = False) -> dict[str, Any] | None:
        if value is None and optional:
            return None
        if not isinstance(value, dict):
            raise self.bad(field, "must be an object")
        problem = data_problem(value)
        if problem is not None:
            raise BadLine(describe_problem(f"{self.where}: {field}", problem))
        return value

    def choice(self, value: Any, field: str, kind: Any, *, optional: bool) -> Any:
        if value is None and optional:
            return None
        try:
            return kind(value)
        except (ValueError, TypeError):
            valid = ", ".join(str(m.value) for m in kind)
            raise self.bad(field, f"is {value!r:.40}; use one of: {valid}") from None


def _saga(check: _Checker, saga: dict[str, Any]) -> SagaRecord:
    missing = [name for name in _REQUIRED if saga.get(name) is None]
    if missing:
        raise BadLine(f"{check.where}: saga is missing {', '.join(missing)}")
    unknown = set(saga) - _SAGA_FIELDS
    if unknown:
        raise BadLine(f"{check.where}: saga has unknown fields {sorted(unknown)}")
    values: dict[str, Any] = {}
    for name, width in _SAGA_TEXT.items():
        values[name] = check.text(
            saga.get(name), f"saga.{name}", width, optional=name not in _REQUIRED
        )
    for name, top in _SAGA_COUNTERS.items():
        values[name] = check.counter(saga.get(name, 0), f"saga.{name}", top)
    values["last_seq"] = check.counter(saga.get("last_seq", 0), "saga.last_seq", MAX_COUNTER)
    for name in _SAGA_TIMES:
        values[name] = check.time(saga.get(name), f"saga.{name}")
    values["data"] = check.data(saga["data"], "saga.data")
    values["deferred"] = check.data(saga.get("deferred"), "saga.deferred", optional=True)
    values["status"] = check.choice(saga["status"], "saga.status", SagaStatus, optional=False)
    values["reason"] = check.choice(saga.get("reason"), "saga.reason", Reason, optional=True)
    values["paused_from"] = check.choice(
        saga.get("paused_from"), "saga.paused_from", SagaStatus, optional=True
    )
    kind = saga.get("kind", "orchestrated")
    if kind not in _KINDS:
        raise check.bad("saga.kind", f"is {kind!r:.40}; use one of: {', '.join(_KINDS)}")
    values["kind"] = kind
    return SagaRecord(**values)


def _event(check: _Checker, saga_id: str, i: int, event: Any) -> SagaEvent:
    field = f"events[{i}]"
    if not isinstance(event, dict) or not {"seq", "type"} <= set(event):
        raise BadLine(f"{check.where}: {field} needs at least seq and type")
    unknown = set(event) - _EVENT_FIELDS
    if unknown:
        raise BadLine(f"{check.where}: {field} has unknown fields {sorted(unknown)}")
    values: dict[str, Any] = {"saga_id": saga_id}
    values["seq"] = check.counter(event["seq"], f"{field}.seq", MAX_COUNTER)
    for name, width in _EVENT_TEXT.items():
        values[name] = check.text(
            event.get(name), f"{field}.{name}", width, optional=name != "type"
        )
    values["attempt"] = check.counter(
        event.get("attempt"), f"{field}.attempt", MAX_COUNTER, optional=True
    )
    duration = event.get("duration_ms")
    if duration is not None and (
        isinstance(duration, bool) or not isinstance(duration, int | float) or duration < 0
    ):
        raise check.bad(f"{field}.duration_ms", "must be a number of milliseconds >= 0")
    values["duration_ms"] = duration
    values["output"] = check.data(event.get("output"), f"{field}.output", optional=True)
    values["error"] = check.data(event.get("error"), f"{field}.error", optional=True)
    at = check.time(event.get("at"), f"{field}.at")
    if at is not None:
        values["at"] = at
    return SagaEvent(**values)


def parse_line(text: str, number: int) -> tuple[SagaRecord, list[SagaEvent]]:
    """Parse and validate one export line; raise ``BadLine`` naming line and field."""
    check = _Checker(f"line {number}")
    item = _load(text, check.where)
    if not isinstance(item, dict) or not isinstance(item.get("saga"), dict):
        raise BadLine(
            f'{check.where}: expected an object with a "saga" object and an "events" list'
        )
    record = _saga(check, item["saga"])
    events = item.get("events", [])
    if not isinstance(events, list):
        raise BadLine(f"{check.where}: events must be a list")
    history = [_event(check, record.id, i, e) for i, e in enumerate(events)]
    seqs = [e.seq for e in history]
    if len(set(seqs)) != len(seqs):
        twice = sorted({s for s in seqs if seqs.count(s) > 1})
        raise BadLine(f"{check.where}: events repeat seq {twice[:5]}; each seq appears once")
    if seqs and max(seqs) > record.last_seq:
        raise check.bad("saga.last_seq", f"is {record.last_seq} but an event has seq {max(seqs)}")
    return record, history


def decode_line(raw: bytes, number: int) -> str:
    """Decode one line of an import file as UTF-8; ``BadLine`` names where it is not."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadLine(
            f"line {number}: not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1}); "
            "is this a sagakit export?"
        ) from None
