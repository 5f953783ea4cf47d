"""What a saga is: its steps, their compensations, timeouts and retry policies. No I/O."""

from __future__ import annotations

import hashlib
import inspect
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

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


class Saga:
    """A named, ordered list of steps; each completed step is undone if a later one fails.

    ``timeout`` bounds the whole saga (seconds); ``retry`` is the default policy for steps
    and compensations that name none.
    """

    def __init__(
        self,
        name: str,
        *,
        steps: Iterable[Step] = (),
        timeout: float | None = None,
        retry: Retry | None = None,
        step_timeout: float | None = None,
    ) -> None:
        self.name = _check_name("saga", name)
        _check_timeout(name, None, timeout)
        _check_timeout(name, None, step_timeout)
        if retry is not None and not isinstance(retry, Retry):
            raise DefinitionError(f"saga {name!r}: retry must be a sagakit.Retry, got {retry!r}")
        self.timeout = timeout
        self.retry = retry or DEFAULT_RETRY
        self.step_timeout = step_timeout
        self._steps: list[Step] = []
        self._hash: str | None = None
        for step in steps:
            self.add(step)

    @property
    def steps(self) -> tuple[Step, ...]:
        """The steps in the order they run."""
        return tuple(self._steps)

    def add(self, step: Step) -> Step:
        """Append ``step``; refuse a duplicate name."""
        if not isinstance(step, Step):
            raise DefinitionError(
                f"saga {self.name!r}: steps must be sagakit.Step objects, got {step!r}"
            )
        step._saga = self.name
        step.validate(self.name)
        if any(s.name == step.name for s in self._steps):
            raise DefinitionError(
                f"saga {self.name!r}: step name {step.name!r} is used twice; "
                "give each step a unique name (pass name=... to @saga.step)"
            )
        self._steps.append(step)
        self._hash = None
        return step

    @overload
    def step(self, fn: StepFunction, /) -> Step: ...

    @overload
    def step(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        timeout: float | None = None,
        retry: Retry | None = None,
        compensation_retry: Retry | None = None,
        compensation_timeout: float | None = None,
    ) -> Callable[[StepFunction], Step]: ...

    def step(
        self,
        fn: StepFunction | None = None,
        /,
        *,
        name: str | None = None,
        timeout: float | None = None,
        retry: Retry | None = None,
        compensation_retry: Retry | None = None,
        compensation_timeout: float | None = None,
        **unknown: Any,
    ) -> Step | Callable[[StepFunction], Step]:
        """Declare the decorated function as the next step (``@saga.step`` or ``@saga.step(...)``)."""
        refuse_unknown_arguments(
            f"saga {self.name!r}: @saga.step", unknown, ("name", *_STEP_ARGUMENTS[3:])
        )

        def register(action: StepFunction) -> Step:
            step_name = name or getattr(action, "__name__", None)
            return self.add(
                Step(
                    name=step_name,  # type: ignore[arg-type]  # validated in Step
                    action=action,
                    timeout=timeout,
                    retry=retry,
                    compensation_retry=compensation_retry,
                    compensation_timeout=compensation_timeout,
                    _saga=self.name,
                )
            )

        return register(fn) if fn is not None else register

    def compensation_for(self, step_name: str) -> Callable[[StepFunction], StepFunction]:
        """Attach the decorated function as the compensation of the step named ``step_name``."""
        step = self.get_step(step_name)
        return step.compensation

    def get_step(self, step_name: str) -> Step:
        """Return the step called ``step_name`` or raise ``DefinitionError`` listing the others."""
        for step in self._steps:
            if step.name == step_name:
                return step
        known = ", ".join(s.name for s in self._steps) or "none yet"
        raise DefinitionError(
            f"saga {self.name!r} has no step {step_name!r} (steps: {known}); declare the step "
            "before its compensation"
        )

    def retry_for(self, step: Step, *, compensation: bool = False) -> Retry:
        """Return the retry policy that applies to ``step`` (or to its compensation)."""
        own = step.compensation_retry if compensation else step.retry
        return own or self.retry

    def timeout_for(self, step: Step, *, compensation: bool = False) -> float | None:
        """Return the timeout that applies to ``step`` (or to its compensation)."""
        own = step.compensation_timeout if compensation else step.timeout
        return own if own is not None else self.step_timeout

    @property
    def definition_hash(self) -> str:
        """A digest of the step list, stored with each saga to detect code that changed."""
        if self._hash is None:
            shape = "|".join(f"{s.name}:{'c' if s.compensate else '-'}" for s in self._steps)
            self._hash = hashlib.sha256(f"{self.name}|{shape}".encode()).hexdigest()[:16]
        return self._hash

    def validate(self) -> None:
        """Raise ``DefinitionError`` if the saga cannot run (it has no step)."""
        if not self._steps:
            raise DefinitionError(
                f"saga {self.name!r} has no steps; add one with @saga.step or steps=[...]"
            )

    def __repr__(self) -> str:
        return f"Saga({self.name!r}, steps={[s.name for s in self._steps]})"


def saga_registry(sagas: Iterable[Saga] | Mapping[str, Saga]) -> dict[str, Saga]:
    """Index sagas by name, refusing two definitions of one name."""
    items = sagas.values() if isinstance(sagas, Mapping) else sagas
    registry: dict[str, Saga] = {}
    for saga in items:
        if not isinstance(saga, Saga):
            raise DefinitionError(f"expected sagakit.Saga objects, got {saga!r}")
        saga.validate()
        if saga.name in registry and registry[saga.name] is not saga:
            raise DefinitionError(f"two sagas are named {saga.name!r}; saga names must be unique")
        registry[saga.name] = saga
    return registry
