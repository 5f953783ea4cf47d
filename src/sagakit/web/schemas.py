"""The API's request and response bodies, as documented in its OpenAPI schema."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..admin.reports import Health, SagaStats
from ..status import SagaStatus
from ..store.records import SagaEvent, SagaRecord


class Problem(BaseModel):
    """Why a request was refused; ``field`` names the input at fault, if one is."""

    detail: str
    field: str | None = None


class SagaSummary(BaseModel):
    """A saga as lists show it: where it is and what went wrong last."""

    id: str
    saga_type: str
    status: SagaStatus
    reason: str | None
    current_step: str | None
    step_index: int
    attempt: int
    version: int
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    next_attempt_at: datetime | None
    error_type: str | None
    error_message: str | None

    @classmethod
    def of(cls, record: SagaRecord) -> SagaSummary:
        """Build from a stored record."""
        return cls(**_summary_fields(record))


def _summary_fields(record: SagaRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "saga_type": record.saga_type,
        "status": record.status,
        "reason": record.reason.value if record.reason else None,
        "current_step": record.current_step,
        "step_index": record.step_index,
        "attempt": record.attempt,
        "version": record.version,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "completed_at": record.completed_at,
        "next_attempt_at": record.next_attempt_at,
        "error_type": record.error_type,
        "error_message": record.error_message,
    }


class EventOut(BaseModel):
    """One history entry: a step attempt, a compensation, or an operator's action."""

    seq: int
    type: str
    step: str | None
    attempt: int | None
    at: datetime
    duration_ms: float | None
    output: dict[str, Any] | None
    error: dict[str, Any] | None
    actor: str | None
    source_ip: str | None
    reason: str | None

    @classmethod
    def of(cls, event: SagaEvent) -> EventOut:
        """Build from a stored event."""
        return cls(
            seq=event.seq,
            type=event.type,
            step=event.step,
            attempt=event.attempt,
            at=event.at,
            duration_ms=event.duration_ms,
            output=event.output,
            error=event.error,
            actor=event.actor,
            source_ip=event.source_ip,
            reason=event.reason,
        )


class SagaDetail(SagaSummary):
    """One saga in full: its context, lease, last error and history."""

    kind: str
    context: dict[str, Any]
    paused_from: SagaStatus | None
    timeout_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    error_stack: str | None
    events: list[EventOut]

    @classmethod
    def build(cls, record: SagaRecord, events: list[SagaEvent]) -> SagaDetail:
        """Build from a stored record and its history."""
        return cls(
            **_summary_fields(record),
            kind=record.kind,
            context=record.context,
            paused_from=record.paused_from,
            timeout_at=record.timeout_at,
            lease_owner=record.lease_owner,
            lease_expires_at=record.lease_expires_at,
            error_stack=record.error_stack,
            events=[EventOut.of(e) for e in events],
        )


class AuditEvent(EventOut):
    """A history entry with the saga it belongs to, for queries across sagas."""

    saga_id: str

    @classmethod
    def of(cls, event: SagaEvent) -> AuditEvent:
        """Build from a stored event."""
        return cls(saga_id=event.saga_id, **EventOut.of(event).model_dump())


class EventPage(BaseModel):
    """Events across sagas, newest first."""

    items: list[AuditEvent]


class SagaPage(BaseModel):
    """A page of sagas, newest first; pass ``next_cursor`` as ``cursor`` for the next one."""

    items: list[SagaSummary]
    next_cursor: str | None = Field(None, description="null on the last page")


class StartSaga(BaseModel):
    """Start a registered saga type; an ``id`` that exists returns that saga (idempotent)."""

    model_config = ConfigDict(extra="forbid")

    saga_type: str = Field(min_length=1, max_length=100, examples=["purchase_plan"])
    context: dict[str, Any] = Field(default_factory=dict, examples=[{"user_id": 1}])
    id: str | None = Field(None, min_length=1, max_length=255, examples=["order-42"])


class StartedSaga(SagaSummary):
    """The saga a start returned, and whether this request created it."""

    created: bool


class ActionRequest(BaseModel):
    """Why the operator acts; kept in the audit trail."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=1000, examples=["ticket OPS-123"])


class StatsOut(BaseModel):
    """Counts by status and type, success rate and duration percentiles."""

    by_status: dict[str, int]
    by_type: dict[str, dict[str, int]]
    by_reason: dict[str, dict[str, int]]
    total: int
    success_rate: float | None
    p50_seconds: float | None
    p95_seconds: float | None
    sampled: int

    @classmethod
    def of(cls, stats: SagaStats) -> StatsOut:
        """Build from ``reports.stats``."""
        return cls(**stats.to_dict())


class HealthOut(BaseModel):
    """Whether the store answers, how fast, and how many sagas need a person."""

    ok: bool
    store: str
    latency_ms: float | None
    stuck: int
    failed: int
    pool: str | None
    error: str | None
    details: dict[str, Any]
    pool_stats: dict[str, int] | None = None

    @classmethod
    def of(cls, health: Health) -> HealthOut:
        """Build from ``reports.health``."""
        return cls(**health.to_dict())
