"""The transition table, checked exhaustively over every pair of statuses."""

from __future__ import annotations

import itertools

import pytest

from sagakit.errors import InvalidTransition
from sagakit.status import TERMINAL, TRANSITIONS, SagaStatus, can_transition, check_transition

S = SagaStatus

#: The lifecycle as DESIGN.md states it, written out independently of the table.
EXPECTED = {
    S.PENDING: {S.RUNNING, S.COMPENSATING, S.PAUSED},
    S.RUNNING: {S.COMPLETED, S.COMPENSATING, S.PAUSED, S.WAITING},
    S.COMPENSATING: {S.COMPENSATED, S.FAILED, S.PAUSED},
    S.COMPLETED: set(),
    S.COMPENSATED: set(),
    S.FAILED: {S.COMPENSATING},
    S.PAUSED: {S.PENDING, S.RUNNING, S.COMPENSATING, S.ACTIVE, S.WAITING},
    # a state machine instance lives ACTIVE until it is finalized
    S.ACTIVE: {S.COMPLETED, S.PAUSED},
    # a saga parked at a wait_for step: woken, compensated (timeout, cancel) or paused
    S.WAITING: {S.RUNNING, S.COMPENSATING, S.PAUSED},
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(S, S)))
def test_every_pair_of_statuses(current: SagaStatus, target: SagaStatus) -> None:
    allowed = current == target or target in EXPECTED[current]
    assert can_transition(current, target) is allowed
    if allowed:
        check_transition(current, target)
    else:
        with pytest.raises(InvalidTransition, match=f"from {current.value} to {target.value}"):
            check_transition(current, target)


def test_table_holds_nothing_beyond_the_lifecycle() -> None:
    assert {(f, t) for f, targets in EXPECTED.items() for t in targets} == set(TRANSITIONS)


def test_terminal_statuses_have_no_way_out_but_operator_actions_on_failed() -> None:
    assert {S.COMPLETED, S.COMPENSATED, S.FAILED} == TERMINAL
    assert all(s.is_terminal for s in TERMINAL)
    assert not any(s.is_terminal for s in set(S) - TERMINAL)


def test_refusal_lists_what_would_work() -> None:
    with pytest.raises(InvalidTransition, match="COMPENSATED, FAILED, PAUSED"):
        check_transition(S.COMPENSATING, S.COMPLETED)
    with pytest.raises(InvalidTransition, match=r"nothing \(terminal\)"):
        check_transition(S.COMPLETED, S.RUNNING)
