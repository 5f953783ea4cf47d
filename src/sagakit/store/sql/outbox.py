"""The outbox and the inbox in SQL: relay claims (SKIP LOCKED), delivery marks, retention."""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import (
    Select,
    Table,
    Update,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal_column,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from ..delivery_ports import OutboxBacklog
from ..records import InboxMark, OutboxMessage, OutboxQuery, OutboxState
from ..schema import SagaTables
from .core import _DRIVER_ERRORS, SqlCore
from .rows import inbox_params, message_from_row

_T = TypeVar("_T")


def take_heads(rows: Iterable[Any], seen: set[str], heads: list[int]) -> None:
    """Append to ``heads`` each free ``(id, saga_id, free)`` row first of its saga in ``seen``.

    Rows come in id order: a saga met before has an older unpublished message, so its
    later ones wait, free or not.
    """
    for id_, saga_id, free in rows:
        if saga_id in seen:
            continue
        seen.add(saga_id)
        if free:
            heads.append(id_)


def saga_heads(outbox: Table, free: ColumnElement[bool]) -> Select[int]:
    """Ids of messages that are ``free`` and the oldest unpublished of their saga, in order.

    The database finds them itself, probing each pending message's saga for an older
    unpublished one. SQLite and MariaDB read that in index order; PostgreSQL's planner
    turns it into an anti-join, which with the statistics of a new outbox took seconds
    (there the relay scans, see ``SqlOutbox._heads``).
    """
    older = outbox.alias("older")
    earlier = (
        select(older.c.id)
        .where(
            older.c.saga_id == outbox.c.saga_id,
            older.c.id < outbox.c.id,
            older.c.published_at.is_(None),
        )
        .exists()
    )
    return select(outbox.c.id).where(free, ~earlier).order_by(outbox.c.id)


def claim_chosen(outbox: Table, chosen: Select[int]) -> Update:
    """Claim the messages ``chosen`` for ``b_owner`` until ``b_until``, returning their rows."""
    o = outbox
    return (
        update(o)
        .where(o.c.id.in_(chosen))
        .values(
            claimed_by=bindparam("b_owner"),
            claimed_until=bindparam("b_until", type_=o.c.claimed_until.type),
            attempts=o.c.attempts + literal_column("1"),
        )
        .returning(*o.c)
    )


def mark_published(outbox: Table, chosen: ColumnElement[bool]) -> Update:
    """Mark the messages ``chosen`` published at ``b_at``, releasing their claims."""
    o = outbox
    return (
        update(o)
        .where(chosen)
        .values(
            published_at=bindparam("b_at", type_=o.c.published_at.type),
            claimed_by=null(),
            claimed_until=null(),
            last_error=null(),
        )
    )


def pending_page(
    outbox: Table, free: ColumnElement[bool], after: Any, page: Any
) -> Select[int, str, bool]:
    """``(id, saga_id, free)`` of up to ``page`` unpublished messages after id ``after``.

    "Free" is decided by the database: three timestamps per row, converted in Python for
    every row of every page, were most of a claim's time.
    """
    o = outbox
    return (
        select(o.c.id, o.c.saga_id, case((free, True), else_=False).label("free"))
        .where(o.c.published_at.is_(None), o.c.id > after)
        .order_by(o.c.id)
        .limit(page)
    )


class DriverOutbox(Protocol):
    """A dialect's relay claims and marks, run on the writer's driver connection."""

    async def claim(
        self, driver: Any, owner: str, now: datetime, until: datetime, limit: int
    ) -> builtins.list[OutboxMessage]:
        """Claim up to ``limit`` saga heads for ``owner`` until ``until``, in id order."""
        ...

    async def mark_published(self, driver: Any, ids: Sequence[int], at: datetime) -> None:
        """Mark ``ids`` published at ``at``, releasing their claims."""
        ...


class SqlOutbox(SqlCore):
    """Outbox claims and marks, inbox checks and marks, on the writer connection."""

    #: Whether this process's last outbox claim took as many messages as it asked for.
    _outbox_full = False

    def _free(self, now: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
        """A message a relay may take now: pending, due, and not claimed by a live relay."""
        o = self.tables.outbox
        return and_(
            o.c.published_at.is_(None),
            o.c.dead_at.is_(None),
            or_(o.c.next_attempt_at.is_(None), o.c.next_attempt_at <= now),
            or_(o.c.claimed_until.is_(None), o.c.claimed_until <= now),
        )

    #: Builds a dialect's claims and marks on the driver connection (``None``: it has none).
    driver_outbox: (
        Callable[[SagaTables, Dialect, Callable[[Any], ColumnElement[bool]]], DriverOutbox] | None
    ) = None
    _driver_outbox: DriverOutbox | None = None

    def _direct_outbox(self) -> DriverOutbox | None:
        """Claims and marks on the writer's driver connection, where a dialect has them."""
        if self._driver_outbox is None and self.driver_outbox is not None:
            self._driver_outbox = self.driver_outbox(self.tables, self.engine.dialect, self._free)
        return self._driver_outbox

    async def claim_outbox(
        self, owner: str, *, now: datetime, claim_until: datetime, limit: int
    ) -> builtins.list[OutboxMessage]:
        direct = self._direct_outbox()
        if direct is not None:

            async def claim() -> builtins.list[OutboxMessage]:
                return await direct.claim(
                    await self._writer_driver(), owner, now, claim_until, limit
                )

            return await self._as_writer("claiming outbox messages", claim)
        # look before taking SQLite's one write lock, so idle relays never block; a claim
        # that came back full says more are waiting, and the look would only cost time
        if not self.locks_rows and not self._outbox_full:
            o = self.tables.outbox
            if not await self._read(select(o.c.id).where(self._free(now)).limit(1)):
                return []
        claimed = await self._write(
            "claiming outbox messages", self._claim, owner, now, claim_until, limit
        )
        self._outbox_full = len(claimed) >= limit
        return claimed

    def _heads(self, conn: Connection, now: datetime, limit: int) -> list[int]:
        """Ids of up to ``limit`` free messages that are the oldest unpublished of their saga.

        Unpublished messages are read in id order, a page at a time, without locks (so a
        message another relay has locked still counts as its saga's oldest): the first one
        of each saga met is its head. This is a scan in index order, whatever the planner
        knows of the table; an anti-join wants statistics a new or fast-growing outbox
        lacks, and measured seconds per claim on PostgreSQL.
        """
        o = self.tables.outbox
        page = max(limit * 4, 100)
        heads: list[int] = []
        seen: set[str] = set()
        after = 0
        while len(heads) < limit:
            rows = conn.execute(pending_page(o, self._free(now), after, page)).all()
            take_heads(rows, seen, heads)
            if len(rows) < page:
                break
            after = rows[-1][0]
        return heads[:limit]

    def _claim(
        self, conn: Connection, owner: str, now: datetime, until: datetime, limit: int
    ) -> builtins.list[OutboxMessage]:
        o = self.tables.outbox
        with conn.begin():
            heads = self._heads(conn, now, limit)
            if not heads:
                return []
            # lock the heads, checking again what may have changed since they were read;
            # those another relay holds are skipped, not waited for
            query = select(o).where(o.c.id.in_(heads), self._free(now)).order_by(o.c.id)
            if self.locks_rows:
                query = query.with_for_update(skip_locked=True)
            claimed = [message_from_row(row) for row in conn.execute(query).all()]
            if claimed:
                conn.execute(
                    update(o)
                    .where(o.c.id.in_([m.id for m in claimed]))
                    .values(claimed_by=owner, claimed_until=until, attempts=o.c.attempts + 1)
                )
        for message in claimed:
            message.claimed_by, message.claimed_until = owner, until
            message.attempts += 1
        return claimed

    async def outbox_published(self, ids: Iterable[int], *, at: datetime) -> None:
        wanted = list(ids)
        if not wanted:
            return
        direct = self._direct_outbox()
        if direct is None:
            await self._write("marking outbox messages published", self._published, wanted, at)
            return

        async def mark() -> None:
            await direct.mark_published(await self._writer_driver(), wanted, at)

        await self._as_writer("marking outbox messages published", mark)

    def _published(self, conn: Connection, ids: list[int], at: datetime) -> None:
        o = self.tables.outbox
        statement = (
            update(o)
            .where(o.c.id.in_(ids))
            .values(published_at=at, claimed_by=None, claimed_until=None, last_error=None)
        )
        with conn.begin():
            conn.execute(statement)

    async def outbox_failed(
        self, message_id: int, *, error: str, retry_at: datetime | None, now: datetime
    ) -> None:
        o = self.tables.outbox
        statement = (
            update(o)
            .where(o.c.id == message_id, o.c.published_at.is_(None))
            .values(
                claimed_by=None,
                claimed_until=None,
                last_error=error[:4000],
                next_attempt_at=retry_at,
                dead_at=None if retry_at is not None else now,
            )
        )
        await self._write("recording a failed publish", self._run, statement)

    async def list_outbox(self, query: OutboxQuery) -> builtins.list[OutboxMessage]:
        o = self.tables.outbox
        select_ = select(o).order_by(o.c.id.desc()).limit(query.limit)
        if query.saga_id is not None:
            select_ = select_.where(o.c.saga_id == query.saga_id)
        if query.state is OutboxState.PUBLISHED:
            select_ = select_.where(o.c.published_at.is_not(None))
        elif query.state is OutboxState.DEAD:
            select_ = select_.where(o.c.published_at.is_(None), o.c.dead_at.is_not(None))
        elif query.state is OutboxState.PENDING:
            select_ = select_.where(o.c.published_at.is_(None), o.c.dead_at.is_(None))
        return [message_from_row(row) for row in await self._read(select_)]

    async def retry_outbox(self, ids: Iterable[int], *, now: datetime) -> int:
        wanted = list(ids)
        if not wanted:
            return 0
        o = self.tables.outbox
        statement = (
            update(o)
            .where(o.c.id.in_(wanted), o.c.dead_at.is_not(None), o.c.published_at.is_(None))
            .values(dead_at=None, next_attempt_at=None, attempts=0)
        )
        return await self._write("retrying outbox messages", self._run, statement)

    async def outbox_backlog(self) -> OutboxBacklog:
        o = self.tables.outbox
        unpublished = o.c.published_at.is_(None)
        pending = and_(unpublished, o.c.dead_at.is_(None))
        # CASE, not FILTER: MariaDB has no aggregate FILTER clause
        rows = await self._read(
            select(
                func.sum(case((pending, 1), else_=0)),
                func.sum(case((pending, 0), else_=1)),
                func.min(case((pending, o.c.created_at))),
            ).where(unpublished)
        )
        n_pending, n_dead, oldest = tuple(rows[0])
        return OutboxBacklog(int(n_pending or 0), int(n_dead or 0), oldest)

    async def purge_outbox(self, *, published_before: datetime) -> int:
        o = self.tables.outbox
        statement = delete(o).where(
            o.c.published_at.is_not(None), o.c.published_at < published_before
        )
        return await self._write("deleting published outbox messages", self._run, statement)

    # -- inbox ----------------------------------------------------------------------------

    async def inbox_seen(self, mark: InboxMark) -> bool:
        i = self.tables.inbox
        return bool(await self._read(select(i.c.message_id).where(self._seen_clause([mark]))))

    async def record_inbox(self, mark: InboxMark, *, at: datetime) -> bool:
        return bool(await self._write("recording an inbox mark", self._mark_once, mark, at))

    def _mark_once(self, conn: Connection, mark: InboxMark, at: datetime) -> bool:
        try:
            with conn.begin():
                if self._duplicates(conn, [mark]):
                    return False
                conn.execute(insert(self.tables.inbox), [inbox_params(mark, at)])
        except IntegrityError:  # recorded by another process between the look and the insert
            return False
        return True

    async def purge_inbox(self, *, received_before: datetime) -> int:
        i = self.tables.inbox
        statement = delete(i).where(i.c.received_at < received_before)
        return await self._write("deleting old inbox marks", self._run, statement)

    # -- shared ---------------------------------------------------------------------------

    @staticmethod
    def _run(conn: Connection, statement: Any) -> int:
        with conn.begin():
            return int(conn.execute(statement).rowcount)

    async def _write(self, doing: str, fn: Callable[..., _T], *args: Any) -> _T:
        """Run ``fn(connection, *args)`` on the writer connection, errors translated."""
        return await self._as_writer(doing, lambda: self._in_writer(fn, *args))

    async def _as_writer(self, doing: str, run: Callable[[], Awaitable[_T]]) -> _T:
        """Await ``run()`` holding the writer, its driver errors translated."""
        if self._flusher is None:
            raise self._not_open()
        try:
            async with self._writer_lock:
                return await run()
        except _DRIVER_ERRORS + self.raw_driver_errors as e:
            raise await self._writer_failed(e, doing) from e
