"""How long delivered messages are kept: published outbox rows and inbox marks."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from ..store.base import SagaStore

log = logging.getLogger("sagakit.retention")

#: Published outbox rows and inbox marks older than this are deleted. An inbox mark must
#: outlive every redelivery of its message; a week is far beyond any broker's.
MESSAGE_RETENTION = timedelta(days=7)


async def purge_messages(store: SagaStore, *, before: datetime) -> tuple[int, int]:
    """Delete outbox rows published and inbox marks recorded before ``before``.

    Unpublished and dead messages are never deleted. Return both counts.
    """
    published = await store.purge_outbox(published_before=before)
    marks = await store.purge_inbox(received_before=before)
    if published or marks:
        log.info("deleted %d published outbox messages and %d inbox marks", published, marks)
    return published, marks
