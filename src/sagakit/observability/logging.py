"""Structured logs: JSON lines carrying a saga's id, type, step and attempt, and a hooks logger.

The engine already logs with ``extra={"saga_id": ..., "saga_type": ..., "step": ...}``;
:class:`JsonFormatter` turns those extras into fields, and :class:`SagaLogging` logs
every lifecycle event the same way. Standard library only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, Any

from ..checkpoint import describe_error
from ..hooks import SagaHooks
from ..status import SagaStatus
from ..store.records import SagaRecord

__all__ = ["FIELDS", "JsonFormatter", "SagaFieldsFilter", "SagaLogging", "json_logging"]

#: Record attributes rendered as JSON fields whenever a record has them.
FIELDS: tuple[str, ...] = (
    "saga_id",
    "saga_type",
    "step",
    "attempt",
    "event",
    "status",
    "reason",
    "seconds",
    "error_type",
    "will_retry",
)

#: Marks the handler ``json_logging`` installed, so a second call replaces it.
_MARK = "_sagakit_json_logging"


class SagaFieldsFilter(logging.Filter):
    """Give every record each of ``FIELDS`` (``None`` when absent), for ``%(saga_id)s`` formats."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Fill in the missing fields; never drop a record."""
        for name in FIELDS:
            if not hasattr(record, name):
                setattr(record, name, None)
        return True


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON object on one line: time, level, logger, message, fields.

    ``fields`` names the record attributes copied when present and not ``None``
    (``FIELDS`` by default); values JSON cannot hold are written as their ``str``.
    """

    def __init__(self, fields: Iterable[str] = FIELDS) -> None:
        super().__init__()
        self.fields = tuple(fields)

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON line (without the newline)."""
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in self.fields:
            value = getattr(record, name, None)
            if value is not None:
                doc[name] = value
        if record.exc_info:
            doc["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            doc["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


def json_logging(
    level: int | str = logging.INFO,
    *,
    logger: logging.Logger | str | None = None,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Send ``logger``'s records (the root logger's by default) to ``stream`` as JSON lines.

    Like ``logging.basicConfig``, this sets the logger's level; calling it again replaces
    the handler it installed instead of adding a second one. Return the handler.
    """
    target = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
    for old in [h for h in target.handlers if getattr(h, _MARK, False)]:
        target.removeHandler(old)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    setattr(handler, _MARK, True)
    target.addHandler(handler)
    target.setLevel(level)
    return handler


class SagaLogging(SagaHooks):
    """Log each lifecycle event with saga fields: ``Runtime(hooks=[SagaLogging()])``.

    Failures that will be retried log at WARNING, final ones at ERROR; a compensated
    saga logs at WARNING and a FAILED one at ERROR. The logger is ``sagakit.lifecycle``
    unless one is given.
    """

    def __init__(self, logger: logging.Logger | str = "sagakit.lifecycle") -> None:
        self.log = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)

    def _emit(
        self, level: int, msg: str, args: tuple[Any, ...], saga: SagaRecord, **fields: Any
    ) -> None:
        """Log ``msg % (saga id, saga type, *args)``; values never go into the format string."""
        if self.log.isEnabledFor(level):
            extra = {"saga_id": saga.id, "saga_type": saga.saga_type, **fields}
            self.log.log(level, "saga %s (%s)" + msg, saga.id, saga.saga_type, *args, extra=extra)

    def saga_started(self, saga: SagaRecord) -> None:
        """Log the start at INFO."""
        self._emit(
            logging.INFO, " started", (), saga, event="saga_started", status=saga.status.value
        )

    def step_completed(self, saga: SagaRecord, step: str, seconds: float) -> None:
        """Log the step at INFO with its duration."""
        self._emit(
            logging.INFO,
            ": step %s completed in %.3fs",
            (step, seconds),
            saga,
            event="step_completed",
            step=step,
            seconds=round(seconds, 6),
        )

    def step_failed(
        self, saga: SagaRecord, step: str, error: BaseException, *, will_retry: bool
    ) -> None:
        """Log the failed attempt: WARNING if it will be retried, else ERROR."""
        self._failed(saga, "step_failed", step, error, will_retry)

    def compensation_completed(self, saga: SagaRecord, step: str, seconds: float) -> None:
        """Log the compensation at INFO with its duration."""
        self._emit(
            logging.INFO,
            ": compensation of %s completed in %.3fs",
            (step, seconds),
            saga,
            event="compensation_completed",
            step=step,
            seconds=round(seconds, 6),
        )

    def compensation_failed(
        self, saga: SagaRecord, step: str, error: BaseException, *, will_retry: bool
    ) -> None:
        """Log the failed compensation attempt: WARNING if it will be retried, else ERROR."""
        self._failed(saga, "compensation_failed", step, error, will_retry)

    def _failed(
        self, saga: SagaRecord, event: str, step: str, error: BaseException, will_retry: bool
    ) -> None:
        self._emit(
            logging.WARNING if will_retry else logging.ERROR,
            ": %s %s attempt %s failed (%s): %r",
            (
                "step" if event == "step_failed" else "compensation of",
                step,
                saga.attempt,
                "will retry" if will_retry else "no retry left",
                error,
            ),
            saga,
            event=event,
            step=step,
            attempt=saga.attempt,
            error_type=describe_error(error)["type"],
            will_retry=will_retry,
        )

    def saga_finished(self, saga: SagaRecord, seconds: float | None) -> None:
        """Log the outcome: INFO if completed, WARNING if compensated, ERROR if FAILED."""
        level = {
            SagaStatus.COMPENSATED: logging.WARNING,
            SagaStatus.FAILED: logging.ERROR,
        }.get(saga.status, logging.INFO)
        reason = saga.reason.value if saga.reason is not None else None
        self._emit(
            level,
            " %s" + (" (%s)" if reason else "%s"),
            (saga.status.value, reason or ""),
            saga,
            event="saga_finished",
            status=saga.status.value,
            reason=reason,
            seconds=round(seconds, 6) if seconds is not None else None,
        )
