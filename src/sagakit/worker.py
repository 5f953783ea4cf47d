"""Workers: claim runnable sagas from the store, run them, and recover the ones others left.

Any worker resumes any incomplete saga once its lease has expired, whoever started it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from . import clock
from .errors import StoreError, StoreUnavailable
from .hooks import HookChain, SagaHooks
from .leases import LeaseKeeper
from .machines.definition import StateMachine
from .machines.delivery import MachineDelivery
from .machines.schedules import ScheduleRunner
from .messaging.retention import MESSAGE_RETENTION, purge_messages
from .orchestration.definition import Saga
from .orchestration.engine import SagaExecutor
from .orchestration.waits import wait_steps
from .quarantine import Company, Quarantine, company_of
from .status import SagaStatus
from .store.base import SagaStore
from .store.records import SagaRecord, utcnow

log = logging.getLogger("sagakit.worker")


def new_owner_id() -> str:
    """Return a lease owner id naming this host and process, unique per worker."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(slots=True)
class WorkerCounters:
    """What a worker did since it started; read them after ``run(burst=True)``."""

    claimed: int = 0
    completed: int = 0
    compensated: int = 0
    failed: int = 0
    paused: int = 0
    released: int = 0
    lost: int = 0
    retried: int = 0


class _CountRetries(SagaHooks):
    def __init__(self, counters: WorkerCounters) -> None:
        self.counters = counters

    def step_failed(
        self, saga: SagaRecord, step: str, error: BaseException, *, will_retry: bool
    ) -> None:
        self.counters.retried += will_retry

    def compensation_failed(
        self, saga: SagaRecord, step: str, error: BaseException, *, will_retry: bool
    ) -> None:
        self.counters.retried += will_retry


class Runner(Protocol):
    """Advances claimed sagas of one type; the worker hands each claimed row to its runner.

    ``SagaExecutor`` runs orchestrated sagas; another kind of saga adds a runner, not a
    second worker.
    """

    async def run(self, record: SagaRecord) -> SagaRecord | None:
        """Advance the saga; return its last written state, or None if it was taken over."""
        ...

    async def release_unstarted(self, record: SagaRecord) -> None:
        """Hand the saga back without running it (its claim is not counted)."""
        ...


class Worker:
    """Runs up to ``concurrency`` sagas at once, claimed in batches under leases."""

    def __init__(
        self,
        store: SagaStore,
        sagas: Mapping[str, Saga],
        *,
        leases: LeaseKeeper,
        hooks: SagaHooks | None = None,
        concurrency: int = 16,
        poll_interval: float = 1.0,
        max_inline_delay: float | None = None,
        on_finished: Callable[[SagaRecord], None] | None = None,
        archive_after: timedelta | None = None,
        delete_archived_after: timedelta | None = None,
        message_retention: timedelta | None = MESSAGE_RETENTION,
        maintenance_interval: float = 60.0,
        machines: Mapping[str, StateMachine] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.store = store
        self.sagas = dict(sagas)
        self.leases = leases
        self.owner = leases.owner
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.counters = WorkerCounters()
        chain = HookChain([_CountRetries(self.counters)])
        if hooks is not None:
            chain.hooks.append(hooks)
        inline = leases.lease_seconds / 2 if max_inline_delay is None else max_inline_delay
        self._runners: dict[str, Runner] = {
            name: SagaExecutor(
                store,
                saga,
                owner=self.owner,
                hooks=chain,
                max_inline_delay=inline,
                should_stop=self._stopping_requested,
            )
            for name, saga in self.sagas.items()
        }
        #: State machines whose due schedules this worker fires.
        self.machines = dict(machines or {})
        #: Types whose parked rows have a due time: machines, and sagas with wait steps.
        self._due_types = [
            *self.machines,
            *(n for n, s in self.sagas.items() if wait_steps(s.steps)),
        ]
        for name, machine in self.machines.items():
            delivery = MachineDelivery(store, machine, self.sagas, chain)
            self._runners[name] = ScheduleRunner(store, delivery, owner=self.owner)
        self._on_finished = on_finished
        #: Retention: archive finished sagas after this long, delete archived ones after that.
        self.archive_after = archive_after
        self.delete_archived_after = delete_archived_after
        self.message_retention = message_retention
        self.maintenance_interval = maintenance_interval
        self._next_maintenance = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        #: Whom the running sagas may run beside (sagas whose worker died are suspects).
        self._quarantine = Quarantine()
        self._wakeup = asyncio.Event()
        self._stopping = False

    def _stopping_requested(self) -> bool:
        return self._stopping

    def wake(self) -> None:
        """Look for work now instead of at the next poll."""
        self._wakeup.set()

    def stop(self) -> None:
        """Stop claiming; running sagas finish their current step, checkpoint and release."""
        self._stopping = True
        self._wakeup.set()

    @property
    def running(self) -> int:
        """How many sagas this worker is running now."""
        return len(self._tasks)

    async def run(self, *, burst: bool = False) -> WorkerCounters:
        """Claim and run sagas until ``stop()``; with ``burst``, until nothing is runnable."""
        self.leases.start()
        idle = self.poll_interval / 16
        unsubscribe = await self.store.subscribe(self.wake)
        stop_listening = clock.on_advance(self.wake)
        try:
            while not self._stopping:
                await self._maintain()
                if self._quarantine.holds_claims(len(self._tasks)):
                    await self._sleep(self.poll_interval)  # wakes when a task ends
                    continue
                claimed = await self._claim()
                if burst and not claimed and not self._tasks and not self._quarantine.waiting:
                    break
                if claimed and len(self._tasks) < self.concurrency:
                    idle = self.poll_interval / 16
                    continue
                await self._sleep(idle)
                idle = min(idle * 2, self.poll_interval)
        finally:
            stop_listening()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            if unsubscribe is not None:
                await unsubscribe()
        return self.counters

    async def _maintain(self) -> None:
        """Apply the retention policy now and then (cheap, idempotent, any worker may)."""
        own = {n: m.archive_after for n, m in self.machines.items() if m.archive_after is not None}
        if (self.archive_after, self.delete_archived_after, self.message_retention) == (
            None,
            None,
            None,
        ) and not own:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self._next_maintenance:
            return
        self._next_maintenance = loop.time() + self.maintenance_interval
        now = utcnow()
        try:
            if self.archive_after is not None:
                archived = await self.store.archive(
                    finished_before=now - self.archive_after, now=now
                )
                if archived:
                    log.info("archived %d finished sagas", archived)
            for name, after in own.items():  # machines that say how long to keep instances
                archived = await self.store.archive(
                    finished_before=now - after, now=now, saga_types=[name]
                )
                if archived:
                    log.info("archived %d finalized %s instances", archived, name)
            if self.delete_archived_after is not None:
                deleted = await self.store.purge(archived_before=now - self.delete_archived_after)
                if deleted:
                    log.info("deleted %d archived sagas", deleted)
            if self.message_retention is not None:
                await purge_messages(self.store, before=now - self.message_retention)
        except StoreError as e:
            log.warning("retention pass failed: %s; will try again", e)

    async def _sleep(self, seconds: float) -> None:
        waiters: set[asyncio.Future[object]] = {asyncio.ensure_future(self._wakeup.wait())}
        waiters |= self._tasks  # type: ignore[arg-type]
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters - set(self._tasks):
            waiter.cancel()
        self._wakeup.clear()

    async def _claim(self) -> int:
        free = self.concurrency - len(self._tasks)
        if free <= 0 or self._stopping:
            return 0
        waiting = [] if self._tasks else self._quarantine.take_waiting(free)
        if waiting:
            records = await self._lease(len(waiting), saga_ids=waiting)
        else:
            records = await self._lease(free, saga_types=self.sagas)
        start, back = self._quarantine.sort(records, len(self._tasks))
        for record in back:
            await self._release(record)
        for record in start:
            self.counters.claimed += 1
            if record.crashes:
                log.info(
                    "saga %s: its worker died running it %d time(s); running it %s",
                    record.id,
                    record.crashes,
                    "alone" if company_of(record) is Company.ALONE else "in quarantine",
                    extra={"saga_id": record.id, "saga_type": record.saga_type},
                )
            self._start(record)
        return len(records) + await self._claim_due()

    async def _claim_due(self) -> int:
        """Lease instances with a schedule due, into the slots left (state machines)."""
        free = self.concurrency - len(self._tasks)
        if not self._due_types or free <= 0 or self._quarantine.holds_claims(len(self._tasks)):
            return 0
        records = await self._lease(free, due=True)
        for record in records:
            self.counters.claimed += 1
            self._start(record)
        return len(records)

    def _start(self, record: SagaRecord) -> asyncio.Task[None]:
        task = asyncio.create_task(self._execute(record), name=f"saga-{record.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _lease(self, limit: int, *, due: bool = False, **which: Any) -> list[SagaRecord]:
        """Claim up to ``limit`` sagas (``which``: the store's claim filters); [] on failure.

        ``due``: instead, state machine instances whose next schedule is due.
        """
        now = utcnow()
        try:
            if due:
                return await self.store.claim_due(
                    self.owner,
                    now=now,
                    lease_until=now + self.leases.lease_until(),
                    limit=limit,
                    saga_types=self._due_types,
                )
            return await self.store.claim(
                self.owner,
                now=now,
                lease_until=now + self.leases.lease_until(),
                limit=limit,
                # a lease that ran out while its renewal failed is still ours to finish:
                # claiming it again would run the same step twice in one process
                exclude_ids=self.leases.held_ids(),
                # after an outage, give live holders a lease's time to renew before taking
                # their sagas over as crashed
                take_over=not self.leases.outage_recent(),
                **which,
            )
        except StoreError as e:
            if isinstance(e, StoreUnavailable):
                self.leases.noted_outage()
            log.warning("worker %s: could not claim sagas: %s; will retry", self.owner, e)
        except Exception:  # a worker must outlive any one failed poll
            log.exception("worker %s: claiming sagas failed unexpectedly; will retry", self.owner)
        return []

    async def _release(self, record: SagaRecord) -> None:
        try:
            await self._runners[record.saga_type].release_unstarted(record)
        except StoreError as e:
            log.warning("saga %s: could not release (%s); its lease will expire", record.id, e)

    async def _execute(self, record: SagaRecord) -> None:
        self.leases.hold(record)
        try:
            final = await self._runners[record.saga_type].run(record)
        except StoreError as e:
            log.warning("saga %s: store error, left for recovery: %s", record.id, e)
            final = None
        except Exception:
            log.exception("saga %s: unexpected engine error; left for recovery", record.id)
            final = None
        finally:
            self.leases.drop(record.id)
        self._count(final)
        if final is not None and self._on_finished is not None:
            self._on_finished(final)

    def _count(self, final: SagaRecord | None) -> None:
        c = self.counters
        if final is None:
            c.lost += 1
        elif final.status == SagaStatus.COMPLETED:
            c.completed += 1
        elif final.status == SagaStatus.COMPENSATED:
            c.compensated += 1
        elif final.status == SagaStatus.FAILED:
            c.failed += 1
        elif final.status == SagaStatus.PAUSED:
            c.paused += 1
        else:
            c.released += 1
