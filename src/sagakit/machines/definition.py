"""Event-driven sagas: a persistent state machine, its states, events and handlers.

An instance exists per business key (``correlate_by``); each event is applied to it in
one transaction (``machines/delivery.py``). Handlers are plain or async functions of
``(instance, event)`` that return the next state, or ``None`` to stay.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeAlias

from ..errors import DefinitionError
from ..orchestration.step import Retry

if TYPE_CHECKING:
    from .instance import Instance

_MAX_NAME = 100

#: What a handler returns: the next state, or None to stay where the instance is.
HandlerResult: TypeAlias = "State | None"
Handler: TypeAlias = Callable[
    ["Instance", dict[str, Any]], "HandlerResult | Awaitable[HandlerResult]"
]


class Unhandled(StrEnum):
    """What to do with an event the instance's current state has no handler for."""

    #: Recorded in the instance's history as a fault; the send reports it; unchanged.
    FAULT = "fault"
    #: Recorded in the history and acknowledged; unchanged.
    IGNORE = "ignore"


class Missing(StrEnum):
    """What to do with a (non-initial) event for a key that has no instance."""

    #: Nothing is written; the send reports it.
    FAULT = "fault"
    #: Acknowledged and dropped; the send reports it.
    IGNORE = "ignore"
    #: Kept with the key and applied once an instance exists and has a handler for it.
    HOLD = "hold"


@dataclass(frozen=True, slots=True)
class State:
    """One state of a machine; handlers return it to move an instance there."""

    name: str
    machine: str

    def __str__(self) -> str:
        return self.name


def _check_name(what: str, name: object) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > _MAX_NAME:
        raise DefinitionError(
            f"{what} must be a non-empty string of at most {_MAX_NAME} characters, got {name!r}"
        )
    return name


class StateMachine:
    """A persistent state machine: one instance per value of ``correlate_by``.

    ``initially(event)`` handlers create the instance; ``during(state, event)`` handlers
    apply to an instance in that state. ``on_unhandled`` is ``"fault"`` (default),
    ``"ignore"`` or a handler for any event the current state does not handle.
    ``retry`` bounds how often a raising handler is retried before the event is recorded
    as faulted. ``archive_after``: finalized instances are archived this long after they
    finished (sooner if the Runtime's own ``archive_after`` is shorter).
    """

    kind = "state_machine"

    def __init__(
        self,
        name: str,
        *,
        correlate_by: str,
        archive_after: timedelta | None = None,
        on_unhandled: str | Handler = Unhandled.FAULT,
        retry: Retry | None = None,
        hold_limit: int = 100,
    ) -> None:
        self.name = _check_name("state machine name", name)
        self.correlate_by = _check_name(f"state machine {name!r}: correlate_by", correlate_by)
        self.archive_after = archive_after
        if callable(on_unhandled):
            self.unhandled: Unhandled | Handler = on_unhandled
        else:
            try:
                self.unhandled = Unhandled(on_unhandled)
            except ValueError:
                raise DefinitionError(
                    f"state machine {name!r}: on_unhandled must be 'fault', 'ignore' or a "
                    f"handler function, got {on_unhandled!r}"
                ) from None
        self.retry = retry or Retry(max_attempts=3, initial=0.05, max_delay=1.0)
        if not isinstance(hold_limit, int) or hold_limit < 1:
            raise DefinitionError(
                f"state machine {name!r}: hold_limit must be an int >= 1, got {hold_limit!r}"
            )
        #: Held events kept per key at most; more are refused as faults.
        self.hold_limit = hold_limit
        self._states: dict[str, State] = {}
        self._initial: dict[str, Handler] = {}
        self._during: dict[tuple[str, str], Handler] = {}
        self._missing: dict[str, Missing] = {}

    def __repr__(self) -> str:
        return f"StateMachine({self.name!r}, states={list(self._states)})"

    # -- definition -----------------------------------------------------------------------

    def states(self, *names: str) -> tuple[State, ...]:
        """Declare states by name and return them, in order."""
        declared = []
        for name in names:
            _check_name(f"state machine {self.name!r}: state name", name)
            if name in self._states:
                raise DefinitionError(f"state machine {self.name!r}: state {name!r} twice")
            self._states[name] = State(name, self.name)
            declared.append(self._states[name])
        return tuple(declared)

    def initially(self, event: str) -> Callable[[Handler], Handler]:
        """Register the handler that creates an instance when ``event`` arrives first."""
        _check_name(f"state machine {self.name!r}: event name", event)

        def register(fn: Handler) -> Handler:
            self._check_handler(fn, event)
            if event in self._initial:
                raise DefinitionError(
                    f"state machine {self.name!r}: two initially({event!r}) handlers"
                )
            self._initial[event] = fn
            return fn

        return register

    def during(self, states: State | Iterable[State], event: str) -> Callable[[Handler], Handler]:
        """Register the handler of ``event`` for instances in ``states`` (one or several)."""
        _check_name(f"state machine {self.name!r}: event name", event)
        chosen = [states] if isinstance(states, State) else list(states)
        for state in chosen:
            if not isinstance(state, State) or self._states.get(state.name) is not state:
                raise DefinitionError(
                    f"state machine {self.name!r}: during() takes states declared with "
                    f"{self.name}.states(...), got {state!r}"
                )

        def register(fn: Handler) -> Handler:
            self._check_handler(fn, event)
            for state in chosen:
                if (state.name, event) in self._during:
                    raise DefinitionError(
                        f"state machine {self.name!r}: two handlers for {event!r} "
                        f"during {state.name!r}"
                    )
                self._during[(state.name, event)] = fn
            return fn

        return register

    def event(self, name: str, *, missing: str = Missing.FAULT) -> None:
        """Say what to do with ``name`` when it arrives for a key with no instance."""
        _check_name(f"state machine {self.name!r}: event name", name)
        try:
            self._missing[name] = Missing(missing)
        except ValueError:
            raise DefinitionError(
                f"state machine {self.name!r}: event {name!r}: missing must be 'fault', "
                f"'ignore' or 'hold', got {missing!r}"
            ) from None

    def _check_handler(self, fn: object, event: str) -> None:
        if not callable(fn):
            raise DefinitionError(
                f"state machine {self.name!r}: the handler of {event!r} must be a function"
            )

    # -- lookups --------------------------------------------------------------------------

    @property
    def state_names(self) -> tuple[str, ...]:
        """Every declared state, in declaration order."""
        return tuple(self._states)

    @property
    def events(self) -> tuple[str, ...]:
        """Every event some handler takes, sorted."""
        return tuple(sorted({*self._initial, *(e for _, e in self._during)}))

    @property
    def declared_events(self) -> tuple[str, ...]:
        """Events declared with ``event(...)`` (what to do when no instance exists)."""
        return tuple(sorted(self._missing))

    def state(self, name: str) -> State | None:
        """The declared state called ``name``, if any."""
        return self._states.get(name)

    def handler_for(self, state: str | None, event: str) -> Handler | None:
        """The handler of ``event`` for an instance in ``state`` (None: not created yet)."""
        if state is None:
            return self._initial.get(event)
        return self._during.get((state, event))

    def is_initial(self, event: str) -> bool:
        """Whether ``event`` creates an instance."""
        return event in self._initial

    def missing_policy(self, event: str) -> Missing:
        """What to do with ``event`` when no instance exists for its key."""
        return self._missing.get(event, Missing.FAULT)

    def transitions(self) -> list[tuple[str | None, str]]:
        """Every (state, event) pair with a handler; None is the initial state."""
        return [(None, e) for e in self._initial] + list(self._during)

    def validate(self) -> None:
        """Refuse a machine that could never run: no state or no initial event."""
        if not self._states:
            raise DefinitionError(
                f"state machine {self.name!r} declares no state; use {self.name}.states(...)"
            )
        if not self._initial:
            raise DefinitionError(
                f"state machine {self.name!r} has no initially(...) handler, so no instance "
                "could ever be created"
            )

    @property
    def definition_hash(self) -> str:
        """A hash of the states and handled (state, event) pairs."""
        shape = {"states": list(self._states), "transitions": sorted(map(str, self.transitions()))}
        return hashlib.sha256(json.dumps(shape).encode()).hexdigest()[:16]

    def instance_id(self, key: str) -> str:
        """The id of this machine's instance for ``key``: one row per machine and key."""
        return f"{self.name}:{key}"
