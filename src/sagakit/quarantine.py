"""Quarantine: which claimed sagas a worker may run beside the ones it already runs.

A saga whose worker died while running it (``crashes`` > 0) is a suspect: the death may
have been its own doing or a neighbour's. Suspects are found out by group testing, so
that recovering many sagas after a crash stays as fast as running them:

- ``crashes == 1``: the worker died with others beside it. Such sagas run together in a
  quarantine group, with no clean saga beside them, so a poison among them takes only
  suspects down with it.
- ``crashes >= 2``: the worker died while it ran in quarantine. It runs alone; a death
  now is its own, and only those are charged against ``Retry.max_crashes``.

A step that ends with its process alive resets ``crashes``: the saga is clean again.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum

from .store.records import SagaRecord


class Company(IntEnum):
    """Whom a claimed saga may run beside, by how often its worker died running it."""

    CLEAN = 0
    SUSPECTS = 1
    ALONE = 2


#: Deaths a saga has on record when it starts running alone: one beside clean sagas, one
#: in a quarantine group. Deaths beyond these happened while it was alone.
DEATHS_BEFORE_ALONE = int(Company.ALONE)


def company_of(record: SagaRecord) -> Company:
    """Whom ``record`` may run beside, given the deaths its claim counted."""
    return Company(min(record.crashes, int(Company.ALONE)))


class Quarantine:
    """One worker's running company, and the suspects waiting for it to be idle.

    The first saga a worker starts when idle sets the company (the most suspect kind in
    the batch goes first, so suspects are never starved by a stream of clean work); any
    claimed saga that may not join is handed back. After a hand-back the worker claims
    nothing new until what it runs has finished, so it does not take the same sagas
    again and again, and the waiting kind goes next.
    """

    def __init__(self) -> None:
        self.company: Company | None = None
        self.draining = False
        #: Suspects handed back, to lease by id once this worker is idle.
        self.waiting: dict[str, Company] = {}

    def holds_claims(self, running: int) -> bool:
        """Whether to claim nothing now: one runs alone, or others wait for idleness."""
        if not running:
            return False
        return self.company is Company.ALONE or self.draining

    def take_waiting(self, free: int) -> list[str]:
        """Ids of waiting suspects to lease now (the worker is idle): one alone, or a group."""
        alone = [saga_id for saga_id, c in self.waiting.items() if c is Company.ALONE]
        ids = alone[:1] if alone else list(self.waiting)[:free]
        for saga_id in ids:
            del self.waiting[saga_id]
        return ids

    def sort(
        self, records: Iterable[SagaRecord], running: int
    ) -> tuple[list[SagaRecord], list[SagaRecord]]:
        """Split claimed ``records`` into those to start and those to hand back."""
        records = list(records)
        if not running:
            self.company = max((company_of(r) for r in records), default=None)
            self.draining = False
        start: list[SagaRecord] = []
        back: list[SagaRecord] = []
        for record in records:
            company = company_of(record)
            alone_taken = company is Company.ALONE and (running or start)
            if company is self.company and not alone_taken:
                start.append(record)
                self.waiting.pop(record.id, None)
                continue
            back.append(record)
            if company is not Company.CLEAN:
                self.waiting[record.id] = company
        self.draining = self.draining or bool(back)
        return start, back
