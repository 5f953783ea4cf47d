"""What a saga is: a named list of steps (``step.py``), with its defaults. No I/O."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any, overload

from ..errors import DefinitionError
from .step import (
    _STEP_ARGUMENTS,
    DEFAULT_RETRY,
    Retry,
    Step,
    StepFunction,
    _check_name,
    _check_timeout,
    refuse_unknown_arguments,
)
from .wait_step import WaitStep


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

    def wait_for(
        self,
        event: str,
        *,
        match: str | None = None,
        timeout: float | timedelta | None = None,
        on_timeout: StepFunction | None = None,
        name: str | None = None,
    ) -> Step:
        """Add a step that parks the saga until ``event`` arrives (``orchestration/waits.py``).

        ``match``: the context key whose value the event's payload must carry; without
        it, only ``rt.send(..., saga_id=...)`` reaches the saga. ``timeout`` seconds
        later, ``on_timeout(ctx)`` runs as the step, or the saga is compensated.
        """
        return self.add(
            WaitStep(event, match=match, timeout=timeout, on_timeout=on_timeout, name=name)
        )

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
