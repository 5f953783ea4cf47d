"""A state machine drawn for the dashboard: its states, the transitions seen, counts.

States come from the definition, in the order they were declared, after a start node
(an instance before its first event). Handlers return their next state at run time, so
the arrows are the transitions the instances' histories show (``event_applied``, from
and to), each with how often it happened; events a state handles that never moved an
instance are listed under it. The template draws it as SVG.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..history import EventType
from ..machines.definition import StateMachine
from ..status import SagaStatus
from ..store.base import SagaStore
from ..store.records import EventQuery

_W, _H, _GAP, _TOP, _LEFT = 150, 54, 60, 110, 20
#: History events read to find the transitions (the newest ones).
TRANSITIONS_READ = 5000


@dataclass(frozen=True, slots=True)
class StateBox:
    """One state: where it is drawn, how many instances are in it, what it handles."""

    name: str
    label: str
    x: int
    y: int
    active: int
    finished: int
    handles: tuple[str, ...]
    current: bool


@dataclass(frozen=True, slots=True)
class Arrow:
    """A transition seen in the histories: an SVG path, its label and where it goes."""

    path: str
    label: str
    label_x: int
    label_y: int
    count: int


@dataclass(slots=True)
class Diagram:
    """Everything the template needs to draw one machine."""

    machine: str
    width: int
    height: int
    boxes: list[StateBox] = field(default_factory=list)
    arrows: list[Arrow] = field(default_factory=list)
    box_w: int = _W
    box_h: int = _H


async def machine_diagram(
    store: SagaStore, machine: StateMachine, *, current: str | None = None, highlight: bool = False
) -> Diagram:
    """Lay ``machine`` out; ``highlight`` marks ``current`` (an instance's state)."""
    counts = await store.count_by_state(machine.name)
    names: list[str | None] = [None, *machine.state_names]
    index = {name: i for i, name in enumerate(names)}
    handled: dict[str | None, list[str]] = {}
    for state, event in machine.transitions():
        handled.setdefault(state, []).append(event)
    seen = await _transitions(store, machine.name)
    moved = {(a, e) for a, _, e in seen}
    diagram = Diagram(machine.name, _LEFT * 2 + len(names) * (_W + _GAP) - _GAP, _TOP + 170)
    for i, name in enumerate(names):
        active = sum(n for (s, st), n in counts.items() if st == name and s == SagaStatus.ACTIVE)
        finished = sum(n for (s, st), n in counts.items() if st == name and s != SagaStatus.ACTIVE)
        diagram.boxes.append(
            StateBox(
                name=name or "",
                label=name or "(start)",
                x=_LEFT + i * (_W + _GAP),
                y=_TOP,
                active=active,
                finished=finished,
                handles=tuple(e for e in handled.get(name, []) if (name, e) not in moved),
                current=highlight and name == current,
            )
        )
    lanes: Counter[int] = Counter()
    for (source, target, event), n in sorted(seen.items(), key=lambda kv: str(kv[0])):
        if source not in index or target not in index:
            continue  # a state the definition no longer has
        a, b = index[source], index[target]
        lanes[min(a, b)] += 1
        diagram.arrows.append(_arrow(a, b, event, n, lanes[min(a, b)]))
    # room under the boxes for the handled-event lists and any arrow going back left
    below = max((len(box.handles) for box in diagram.boxes), default=0) * 14 + 24
    back = max(
        (
            40 + 18 * lanes[min(index[s], index[t])]
            for s, t, _ in seen
            if s in index and t in index and index[t] < index[s]
        ),
        default=0,
    )
    diagram.height = _TOP + _H + max(below, back + 10)
    return diagram


async def _transitions(store: SagaStore, machine: str) -> Counter[tuple[str | None, str, str]]:
    events = await store.find_events(
        EventQuery(types=(EventType.EVENT_APPLIED,), saga_type=machine, limit=TRANSITIONS_READ)
    )
    seen: Counter[tuple[str | None, str, str]] = Counter()
    for e in events:
        if e.output and e.step and e.output.get("to") is not None:
            seen[(e.output.get("from"), e.output["to"], e.step)] += 1
    return seen


def _arrow(a: int, b: int, event: str, count: int, lane: int) -> Arrow:
    """An arrow from box ``a`` to box ``b``: over the boxes going right, under going left."""
    ax = _LEFT + a * (_W + _GAP) + _W // 2
    bx = _LEFT + b * (_W + _GAP) + _W // 2
    label = f"{event} ({count})"
    if a == b:  # stays: a loop over the box's right corner
        x, y = _LEFT + a * (_W + _GAP) + _W - 20, _TOP
        path = f"M {x} {y} C {x} {y - 40} {x + 40} {y - 40} {x + 40} {y + 14}"
        return Arrow(path, label, x + 10, y - 34 - 12 * (lane - 1), count)
    if b > a:
        lift = 40 + 18 * lane
        y = _TOP
        path = f"M {ax} {y} C {ax} {y - lift} {bx} {y - lift} {bx} {y}"
        return Arrow(path, label, (ax + bx) // 2, y - lift + 8, count)
    drop = 40 + 18 * lane
    y = _TOP + _H
    path = f"M {ax} {y} C {ax} {y + drop} {bx} {y + drop} {bx} {y}"
    return Arrow(path, label, (ax + bx) // 2, y + drop - 2, count)
