"""Hypothesis event sequences: the order example takes any of them; a broken machine is caught."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from examples.order_state_machine import order, shipping
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

import sagakit as sk
from sagakit.testing.sequences import Send, Tick, check_events, machine_events

ORDER_DATA = {
    "OrderSubmitted": st.fixed_dictionaries({"total": st.integers(1, 100)}),
    "PaymentCaptured": st.fixed_dictionaries({"amount": st.integers(1, 100)}),
    "OrderShipped": st.fixed_dictionaries({"tracking": st.text("ABC123", min_size=1, max_size=6)}),
}
order_events = machine_events(order, keys=["o-1", "o-2"], data=ORDER_DATA, ticks=[60, 901])


@given(order_events)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_order_machine_takes_any_sequence_of_its_events(actions: list[Any]) -> None:
    asyncio.run(check_events([order, shipping], actions))


def door_machine() -> sk.StateMachine:
    """A machine whose ``Knock`` handler reads a counter nothing has set yet."""
    door = sk.StateMachine("door", correlate_by="door_id", retry=sk.Retry(max_attempts=1))
    (opened,) = door.states("Open")

    @door.initially("Opened")
    def on_opened(instance: sk.Instance, event: dict[str, Any]) -> sk.State:
        return opened

    @door.during(opened, "Knock")
    def on_knock(instance: sk.Instance, event: dict[str, Any]) -> None:
        instance.data["knocks"] += 1  # the bug: never initialised

    return door


def test_a_handler_that_crashes_on_some_order_is_found_and_shrunk() -> None:
    door = door_machine()

    def breaks(actions: list[Any]) -> bool:
        try:
            asyncio.run(check_events([door], actions))
        except AssertionError:
            return True
        return False

    smallest = find(
        machine_events(door, keys=["d-1"], unknown=False),
        breaks,
        settings=settings(max_examples=200, deadline=None, database=None),
    )
    assert [a.event for a in smallest if isinstance(a, Send)] == ["Opened", "Knock"]
    with pytest.raises(AssertionError, match=r"(?s)Knock.*faulted at door:d-1.*KeyError"):
        asyncio.run(check_events([door], smallest))


def test_duplicates_unknown_names_and_ticks_are_answered_and_listed() -> None:
    submitted = Send("OrderSubmitted", {"order_id": "o-9", "total": 3}, "m-1")
    actions = [
        Send("PaymentCaptured", {"order_id": "o-9", "amount": 3}, "m-0"),  # held: no order yet
        submitted,
        submitted,  # redelivered
        Send("NoSuchEvent", {"order_id": "o-9"}, "m-2"),
        Tick(60),
        Send("OrderShipped", {"order_id": "o-9", "tracking": "T"}, "m-3"),
    ]
    report = asyncio.run(check_events([order, shipping], actions))
    assert report.outcomes[sk.Outcome.HELD] == 1
    assert report.outcomes[sk.Outcome.DUPLICATE] == 1
    assert report.outcomes[sk.Outcome.APPLIED] == 2
    assert "NoSuchEvent" in report.lines[3] and "refused" in report.lines[3]
    assert report.lines[4] == "advance 60s"


def test_demanding_a_handler_everywhere_fails_on_an_unhandled_event() -> None:
    actions = [
        Send("OrderSubmitted", {"order_id": "o-5", "total": 3}, "m-1"),
        Send("OrderShipped", {"order_id": "o-5", "tracking": "T"}, "m-2"),  # not paid yet
    ]
    asyncio.run(check_events([order, shipping], actions))  # unhandled is an answer
    with pytest.raises(AssertionError, match="unhandled at order:o-5"):
        asyncio.run(check_events([order, shipping], actions, forbid={sk.Outcome.UNHANDLED}))


def test_machine_events_refuses_what_it_cannot_draw() -> None:
    with pytest.raises(ValueError, match="at least one correlation key"):
        machine_events(order, keys=[])
