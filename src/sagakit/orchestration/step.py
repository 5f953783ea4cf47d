"""A step of a saga and its retry policy: what runs, its undo, timeouts, retries. No I/O."""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import DefinitionError

#: A step action or compensation: takes the step context, returns a dict (or None).
StepFunction = Callable[..., Any]

_MAX_NAME = 100


@dataclass(frozen=True, slots=True)
class Retry:
    """How often and how patiently a step (or compensation) is retried.

    ``max_attempts`` counts every attempt, the first included. The delay before attempt
    ``n + 1`` is ``initial * backoff ** (n - 1)``, capped at ``max_delay``, with up to
    ``jitter`` (a fraction) added at random so that many sagas do not retry in lockstep.
    Exceptions of a type in ``non_retryable`` fail the step at once.

    A worker process that dies while running the step costs no attempt. The saga is then
    suspect: it runs again in a quarantine group of suspects only, and if that worker
    dies too, alone (see ``sagakit.quarantine``). ``max_crashes`` is how many times it
    may kill its worker while running alone before the step counts as failed. So a
    poison step is stopped, and its neighbours keep their attempts.
    """

    max_attempts: int = 3
    max_crashes: int = 2
    backoff: float = 2.0
    initial: float = 0.2
    max_delay: float = 60.0
    jitter: float = 0.1
    non_retryable: tuple[type[BaseException], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise DefinitionError(
                f"Retry.max_attempts must be an int >= 1, got {self.max_attempts!r}; "
                "use 1 for 'no retries'"
            )
        if not isinstance(self.max_crashes, int) or self.max_crashes < 1:
            raise DefinitionError(
                f"Retry.max_crashes must be an int >= 1, got {self.max_crashes!r}; "
                "1 fails a step the first time it kills a worker while running alone"
            )
        for name in ("backoff", "initial", "max_delay", "jitter"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value < 0:
                raise DefinitionError(f"Retry.{name} must be a number >= 0, got {value!r}")
        if self.backoff < 1:
            raise DefinitionError(
                f"Retry.backoff must be >= 1 (1 means a constant delay), got {self.backoff!r}"
            )
        for exc_type in self.non_retryable:
            if not (isinstance(exc_type, type) and issubclass(exc_type, BaseException)):
                raise DefinitionError(
                    f"Retry.non_retryable must hold exception classes, got {exc_type!r}"
                )

    def delay(self, failed_attempt: int) -> float:
        """Return the seconds to wait after attempt ``failed_attempt`` (1-based) failed."""
        base = min(self.initial * self.backoff ** max(failed_attempt - 1, 0), self.max_delay)
        return base + base * self.jitter * random.random()

    def retryable(self, error: BaseException) -> bool:
        """Tell whether ``error`` may be retried under this policy."""
        return not isinstance(error, self.non_retryable)


#: The policy used where a step names none: three attempts, 0.2 s then 0.4 s apart.
DEFAULT_RETRY = Retry()


_UNBOUND = "<unbound>"


def _where(saga: str | None, step: str | None) -> str:
    parts = [f"saga {saga!r}"] if saga and saga != _UNBOUND else []
    if step:
        parts.append(f"step {step!r}")
    return ", ".join(parts)


def _check_function(saga: str, step: str, role: str, fn: object) -> None:
    if not callable(fn):
        raise DefinitionError(
            f"{_where(saga, step)}: the {role} must be a function taking the "
            f"context, got {type(fn).__name__} {fn!r}"
        )
    target = fn if inspect.isfunction(fn) or inspect.ismethod(fn) else getattr(fn, "__call__", fn)  # noqa: B004
    if inspect.isasyncgenfunction(target) or inspect.isgeneratorfunction(target):
        raise DefinitionError(
            f"{_where(saga, step)}: the {role} {getattr(fn, '__name__', fn)!r} is a "
            "generator; the engine cannot run it. Make it a plain `def` or `async def` "
            "that returns a dict"
        )


def _check_timeout(saga: str, step: str | None, value: float | None) -> None:
    where = _where(saga, step)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise DefinitionError(
            f"{where}: timeout must be a positive number of seconds or None, got {value!r}"
        )


def _check_name(kind: str, name: object, saga: str | None = None) -> str:
    where = f"{_where(saga, None)}: " if saga and saga != _UNBOUND else ""
    if not isinstance(name, str) or not name.strip() or len(name) > _MAX_NAME:
        raise DefinitionError(
            f"{where}{kind} name must be a non-empty string of at most {_MAX_NAME} "
            f"characters, got {name!r}"
        )
    return name


#: Words from hand-written orchestrators, and what to write in sagakit instead.
_OTHER_VOCABULARY = {
    "max_retries": "retry=sk.Retry(max_attempts=N + 1) (max_attempts counts the first try)",
    "retries": "retry=sk.Retry(max_attempts=N + 1) (max_attempts counts the first try)",
    "max_attempts": "retry=sk.Retry(max_attempts=N)",
    "attempts": "retry=sk.Retry(max_attempts=N)",
    "compensation": "compensate=fn (or decorate the undo with @step.compensation)",
    "undo": "compensate=fn (or decorate the undo with @step.compensation)",
    "rollback": "compensate=fn (or decorate the undo with @step.compensation)",
    "timeout_seconds": "timeout=SECONDS",
}


def refuse_unknown_arguments(where: str, unknown: dict[str, Any], known: Iterable[str]) -> None:
    """Raise ``DefinitionError`` for arguments sagakit does not take, saying what it takes."""
    if not unknown:
        return
    name = sorted(unknown)[0]
    instead = _OTHER_VOCABULARY.get(name)
    fix = f"write {instead}" if instead else f"its arguments are: {', '.join(known)}"
    raise DefinitionError(f"{where} has no argument {name!r}; {fix}")


@dataclass(slots=True, eq=False, init=False)
class Step:
    """One step of a saga: an action, its optional compensation, timeout and retries.

    Used directly in the list form (``Saga(name, steps=[Step(...)])``) and returned by
    the ``@saga.step`` decorator, where ``@step.compensation`` attaches the undo.
    """

    name: str
    action: StepFunction
    compensate: StepFunction | None = None
    timeout: float | None = None
    retry: Retry | None = None
    compensation_retry: Retry | None = None
    compensation_timeout: float | None = None
    _saga: str = field(default=_UNBOUND, repr=False)

    def __init__(
        self,
        name: str,
        action: StepFunction,
        compensate: StepFunction | None = None,
        timeout: float | None = None,
        retry: Retry | None = None,
        compensation_retry: Retry | None = None,
        compensation_timeout: float | None = None,
        _saga: str = _UNBOUND,
        **unknown: Any,
    ) -> None:
        refuse_unknown_arguments(f"Step({name!r})", unknown, _STEP_ARGUMENTS)
        self.name = name
        self.action = action
        self.compensate = compensate
        self.timeout = timeout
        self.retry = retry
        self.compensation_retry = compensation_retry
        self.compensation_timeout = compensation_timeout
        self._saga = _saga
        self.validate(self._saga)

    def validate(self, saga: str) -> None:
        """Raise ``DefinitionError`` naming saga, step and fix if this step is invalid."""
        _check_name("step", self.name, saga)
        _check_function(saga, self.name, "action", self.action)
        if self.compensate is not None:
            _check_function(saga, self.name, "compensation", self.compensate)
        _check_timeout(saga, self.name, self.timeout)
        _check_timeout(saga, self.name, self.compensation_timeout)
        for label, policy in (
            ("retry", self.retry),
            ("compensation_retry", self.compensation_retry),
        ):
            if policy is not None and not isinstance(policy, Retry):
                raise DefinitionError(
                    f"{_where(saga, self.name)}: {label} must be a sagakit.Retry, got {policy!r}"
                )

    def compensation(self, fn: StepFunction) -> StepFunction:
        """Attach ``fn`` as this step's compensation (decorator); return ``fn`` unchanged."""
        _check_function(self._saga, self.name, "compensation", fn)
        if self.compensate is not None:
            raise DefinitionError(
                f"{_where(self._saga, self.name)} already has the compensation "
                f"{getattr(self.compensate, '__name__', self.compensate)!r}; keep one"
            )
        self.compensate = fn
        return fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the action directly, so decorated steps stay testable as functions."""
        return self.action(*args, **kwargs)


_STEP_ARGUMENTS = (
    "name",
    "action",
    "compensate",
    "timeout",
    "retry",
    "compensation_retry",
    "compensation_timeout",
)
