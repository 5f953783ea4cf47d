"""Finding sagas for a page of the API or the dashboard, from request filters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ..status import Reason, SagaStatus
from ..store.base import SagaStore
from ..store.records import SagaQuery, SagaRecord
from .inputs import age_cutoff, as_utc, check_text, decode_cursor, encode_cursor


@dataclass(frozen=True, slots=True)
class SagaFilter:
    """What a client asked for; text fields are checked when the query is built."""

    statuses: Sequence[SagaStatus] = ()
    saga_type: str | None = None
    id_contains: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    older_than: str | None = None
    newer_than: str | None = None
    reasons: Sequence[Reason] = ()
    actor: str | None = None
    finished_since: str | None = None
    limit: int = 50
    cursor: str | None = None

    def query(self, prefix: str = "query.") -> SagaQuery:
        """Return the store query (asking one saga more, to tell whether a next page exists).

        Raise ``InputError`` naming ``prefix`` + the field at fault.
        """
        after = as_utc(self.created_after, f"{prefix}created_after") if self.created_after else None
        before = (
            as_utc(self.created_before, f"{prefix}created_before") if self.created_before else None
        )
        if self.newer_than:
            cutoff = age_cutoff(self.newer_than, f"{prefix}newer_than")
            after = max(after, cutoff) if after else cutoff
        if self.older_than:
            cutoff = age_cutoff(self.older_than, f"{prefix}older_than")
            before = min(before, cutoff) if before else cutoff
        return SagaQuery(
            statuses=tuple(self.statuses) or None,
            saga_type=check_text(self.saga_type, f"{prefix}type") if self.saga_type else None,
            id_contains=check_text(self.id_contains, f"{prefix}id_contains")
            if self.id_contains
            else None,
            created_after=after,
            created_before=before,
            reasons=tuple(self.reasons) or None,
            started_by=check_text(self.actor, f"{prefix}actor") if self.actor else None,
            finished_after=age_cutoff(self.finished_since, f"{prefix}finished_since")
            if self.finished_since
            else None,
            before=decode_cursor(self.cursor, f"{prefix}cursor") if self.cursor else None,
            limit=self.limit + 1,
        )


async def find_sagas(
    store: SagaStore, wanted: SagaFilter, prefix: str = "query."
) -> tuple[list[SagaRecord], str | None]:
    """Return one page of sagas, newest first, and the cursor of the next page (or None)."""
    found = await store.list(wanted.query(prefix))
    page = found[: wanted.limit]
    more = len(found) > wanted.limit and bool(page)
    return page, encode_cursor(page[-1]) if more else None
