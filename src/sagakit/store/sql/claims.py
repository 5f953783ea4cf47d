"""Claiming runnable sagas under leases, setting aside rows no worker can load, renewing."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    bindparam,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection

from ...errors import StoreError
from ...status import RUNNABLE, Reason, SagaStatus
from ..records import SagaRecord, lease_to
from .core import (
    _DRIVER_ERRORS,
    SqlCore,
    log,
)
from .rows import (
    checked_record,
    record_params,
)


class Claims(SqlCore):
    """Leases: claim runnable sagas in batches, renew held ones."""

    def _runnable(self, now: datetime) -> Any:
        t = self.tables.instances
        return and_(
            t.c.status.in_([s.value for s in RUNNABLE]),
            or_(t.c.lease_expires_at.is_(None), t.c.lease_expires_at <= now),
            or_(
                t.c.next_attempt_at.is_(None),
                t.c.next_attempt_at <= now,
                and_(
                    t.c.status != SagaStatus.COMPENSATING.value,
                    t.c.timeout_at.is_not(None),
                    t.c.timeout_at <= now,
                ),
            ),
        )

    async def claim(
        self,
        owner: str,
        *,
        now: datetime,
        lease_until: datetime,
        limit: int,
        saga_types: Iterable[str] | None = None,
        saga_ids: Iterable[str] | None = None,
        exclude_ids: Iterable[str] = (),
        take_over: bool = True,
    ) -> builtins.list[SagaRecord]:
        t = self.tables.instances
        query = select(t).where(self._runnable(now))
        if not take_over:
            query = query.where(t.c.lease_owner.is_(None))
        if saga_types is not None:
            query = query.where(t.c.saga_type.in_(list(saga_types)))
        if saga_ids is not None:
            query = query.where(t.c.id.in_(list(saga_ids)))
        excluded = list(exclude_ids)
        if excluded:
            query = query.where(t.c.id.not_in(excluded))
        query = query.order_by(t.c.created_at).limit(limit)
        return await self._lease_found(query, owner, now, lease_until, "claiming sagas")

    async def claim_due(
        self,
        owner: str,
        *,
        now: datetime,
        lease_until: datetime,
        limit: int,
        saga_types: Iterable[str],
    ) -> builtins.list[SagaRecord]:
        t = self.tables.instances
        query = select(t).where(
            t.c.status.in_([SagaStatus.ACTIVE.value, SagaStatus.WAITING.value]),
            t.c.next_attempt_at <= now,
            or_(t.c.lease_expires_at.is_(None), t.c.lease_expires_at <= now),
            t.c.saga_type.in_(list(saga_types)),
        )
        query = query.order_by(t.c.next_attempt_at).limit(limit)
        return await self._lease_found(query, owner, now, lease_until, "claiming due rows")

    async def _lease_found(
        self, query: Select[Any], owner: str, now: datetime, lease_until: datetime, doing: str
    ) -> builtins.list[SagaRecord]:
        """Lease to ``owner`` the rows ``query`` finds, in one transaction of the writer."""
        t = self.tables.instances
        query = self._lock_candidates(query)
        if self._flusher is None:
            raise StoreError(f"store {self.description} is not open")
        try:
            if not self.locks_rows and not await self._read(query.with_only_columns(t.c.id)):
                # Look before taking the single write lock: idle polling never blocks writers.
                return []
            async with self._writer_lock:
                claimed = await self._in_writer(self._claim_rows, query, owner, now, lease_until)
            for record in claimed:
                self._remember(record.id, record_params(record))
            return claimed
        except _DRIVER_ERRORS as e:
            raise await self._writer_failed(e, doing) from e

    def _claim_rows(
        self,
        conn: Connection,
        query: Select[Any],
        owner: str,
        now: datetime,
        lease_until: datetime,
    ) -> builtins.list[SagaRecord]:
        """Lease the rows ``query`` finds, in one transaction."""
        with conn.begin():
            try:
                claimed = [checked_record(row) for row in conn.execute(query).all()]
            except _DRIVER_ERRORS:
                raise
            except Exception:  # one unreadable row: read them one by one, set it aside
                claimed = self._readable_rows(conn, query, now)
            params = []
            for record in claimed:
                expected = record.version
                lease_to(record, owner, now, lease_until)
                params.append({**record_params(record), "b_id": record.id, "b_expected": expected})
            if params:
                conn.execute(self._update, params)
                self.statements += 1
        return claimed

    def _readable_rows(
        self, conn: Connection, query: Select[Any], now: datetime
    ) -> builtins.list[SagaRecord]:
        """Load the rows ``query`` finds one at a time; mark unreadable ones PAUSED/corrupt."""
        t = self.tables.instances
        readable: dict[str, SagaRecord] = {}
        set_aside = True
        while set_aside:  # once bad rows are set aside, the query can find others in their place
            set_aside = False
            for (saga_id,) in conn.execute(query.with_only_columns(t.c.id)).all():
                if saga_id not in readable:
                    set_aside |= not self._read_or_set_aside(conn, saga_id, now, readable)
        return list(readable.values())

    def _read_or_set_aside(
        self, conn: Connection, saga_id: str, now: datetime, readable: dict[str, SagaRecord]
    ) -> bool:
        """Add the saga to ``readable``, or mark it PAUSED/corrupt; return which happened."""
        t = self.tables.instances
        try:
            readable[saga_id] = checked_record(
                conn.execute(select(t).where(t.c.id == saga_id)).one()
            )
            return True
        except _DRIVER_ERRORS:
            raise
        except Exception as e:
            log.error(
                "saga %s: its stored row cannot be read (%s); set aside as PAUSED/corrupt",
                saga_id,
                e,
                extra={"saga_id": saga_id},
            )
            conn.execute(
                update(t)
                .where(t.c.id == saga_id)
                .values(
                    status=SagaStatus.PAUSED.value,
                    reason=Reason.CORRUPT.value,
                    paused_from=None,
                    lease_owner=None,
                    lease_expires_at=None,
                    error_type=f"{type(e).__module__}.{type(e).__qualname__}",
                    error_message=f"the stored row cannot be read: {e}",
                    updated_at=now,
                )
            )
            self.statements += 1
            return False

    async def renew(self, owner: str, saga_ids: Iterable[str], lease_until: datetime) -> set[str]:
        wanted = sorted(saga_ids)
        if not wanted:
            return set()
        t = self.tables.instances
        if not self.locks_rows:  # one database lock for everything: one transaction
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(
                        update(t)
                        .where(t.c.id.in_(wanted), t.c.lease_owner == owner)
                        .values(lease_expires_at=lease_until)
                    )
                    held = await conn.execute(
                        select(t.c.id).where(t.c.id.in_(wanted), t.c.lease_owner == owner)
                    )
                    return set(wanted) - {row[0] for row in held}
            except _DRIVER_ERRORS as e:
                raise self._translate(e, "renewing leases") from e
        # Row locks: renew each lease in its own autocommitted statement. A statement that
        # holds one row lock can wait for a checkpoint but never deadlock with it, and a
        # renewer frozen between statements holds no lock that would hide a saga.
        renew_one = (
            update(t)
            .where(t.c.id == bindparam("b_id"), t.c.lease_owner == owner)
            .values(lease_expires_at=lease_until)
        )
        lost: set[str] = set()
        try:
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                for saga_id in wanted:
                    result = await conn.execute(renew_one, {"b_id": saga_id})
                    if result.rowcount == 0:
                        lost.add(saga_id)
        except _DRIVER_ERRORS as e:
            raise self._translate(e, "renewing leases") from e
        return lost
