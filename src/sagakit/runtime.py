"""The Runtime: owns the store, the registered sagas and the workers; the API users call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import timedelta
from types import TracebackType
from typing import Any

from .errors import ConfigurationError, UnknownSagaType
from .hooks import HookChain, SagaHooks
from .leases import LeaseKeeper
from .machines.definition import StateMachine
from .machines.delivery import MachineDelivery
from .messaging.broker import Broker
from .messaging.brokers import broker_from
from .messaging.consumer import Subscription
from .messaging.relay import Relay
from .orchestration.definition import Saga, saga_registry
from .orchestration.engine import SagaExecutor
from .orchestration.executor_base import Unknown
from .runtime_events import split_definitions
from .runtime_messaging import MessageRouting
from .runtime_queries import SagaQueries
from .settings import RuntimeSettings
from .starting import new_record, started_event
from .status import SagaStatus
from .store.base import SagaStore
from .store.records import SagaRecord, utcnow
from .store.urls import open_store
from .worker import Worker, WorkerCounters, new_owner_id

log = logging.getLogger("sagakit.runtime")


class Runtime(SagaQueries, MessageRouting):
    """Runs sagas against one store.

    ``async with Runtime("sqlite:///sagas.db", sagas=[...]) as rt`` opens the store
    (creating or upgrading its schema unless ``migrate=False``) and runs up to ``workers``
    sagas at once in the background (``DEFAULT_WORKERS`` unless told): sagas started with
    ``start`` and any saga of a registered type that a crashed process left behind, once
    its lease expired. ``workers=0`` runs sagas only in the tasks that call ``run``.

    With a ``broker`` (``"amqp://…"``, ``"memory://"`` or a ``Broker``), what steps publish
    is sent by a relay that runs beside the worker; with ``workers=0``, run
    ``sagakit relay`` somewhere.
    """

    def __init__(
        self,
        url: str | None = None,
        sagas: Iterable[Saga | StateMachine] | Mapping[str, Saga | StateMachine] = (),
        *,
        store: SagaStore | None = None,
        workers: int | None = None,
        lease_seconds: float | None = None,
        poll_interval: float | None = None,
        migrate: bool | None = None,
        hooks: Iterable[SagaHooks] = (),
        prefix: str | None = None,
        owner: str | None = None,
        archive_after: timedelta | None = None,
        delete_archived_after: timedelta | None = None,
        broker: str | Broker | None = None,
        settings: RuntimeSettings | None = None,
    ) -> None:
        if store is not None and url is not None:
            raise ConfigurationError("give Runtime either a store URL or a store, not both")
        given = {
            "workers": workers,
            "lease_seconds": lease_seconds,
            "poll_interval": poll_interval,
            "migrate": migrate,
            "prefix": prefix,
            "owner": owner,
            "archive_after": archive_after,
            "delete_archived_after": delete_archived_after,
            "broker_url": broker if isinstance(broker, str) else None,
        }
        if settings is not None:
            given = {**settings.model_dump(), **{k: v for k, v in given.items() if v is not None}}
        #: Every setting, checked: the arguments given, else ``SAGAKIT_*``, else defaults.
        self.settings = RuntimeSettings.build(**given)
        config = self.settings
        #: What this Runtime was built from, so ``replace`` can build a variant of it.
        self._config: dict[str, Any] = {
            "url": url,
            "store": store,
            "hooks": tuple(hooks),
            "broker": broker if isinstance(broker, Broker) else None,
            "settings": config,
        }
        prefix, owner = config.prefix, config.owner
        lease_seconds = config.lease_seconds
        self.store = store or open_store(url, prefix=prefix)
        orchestrated, machines = split_definitions(sagas)
        self.sagas: dict[str, Saga] = saga_registry(orchestrated)
        #: State machines (``Runtime.send`` delivers events to them), by name.
        self.machines: dict[str, StateMachine] = machines
        both = set(self.sagas) & set(machines)
        if both:
            raise ConfigurationError(
                f"{sorted(both)[0]!r} names both a saga and a state machine; names must be unique"
            )
        self._deliveries: dict[str, MachineDelivery] = {}
        self.owner = owner or new_owner_id()
        self.hooks = HookChain(hooks)
        self.leases = LeaseKeeper(self.store, self.owner, lease_seconds)
        self.workers = config.workers
        self.poll_interval = config.poll_interval
        self.migrate = config.migrate
        self.archive_after = config.archive_after
        self.delete_archived_after = config.delete_archived_after
        self.worker: Worker | None = None
        self._worker_task: asyncio.Task[Any] | None = None
        #: Where published messages go; the relay runs beside the worker (``workers`` > 0).
        chosen = broker if isinstance(broker, Broker) else config.broker_url
        self.broker = broker_from(chosen) if chosen is not None else None
        self.relay: Relay | None = None
        self._relay_task: asyncio.Task[Any] | None = None
        self._subscriptions: list[Subscription] = []
        self._unsubscribe: list[Callable[[], Awaitable[None]]] = []
        self._executors: dict[str, SagaExecutor] = {}
        self._finished: dict[str, asyncio.Event] = {}
        self._opened = False

    def replace(self, **changes: Any) -> Runtime:
        """Return a new, unopened Runtime configured as this one except for ``changes``.

        ``changes`` are ``Runtime(...)`` keyword arguments; a new ``url`` replaces the
        store this one was given. The command line uses this to run the application's own
        Runtime (its hooks, lease, retention, prefix) with only the flags a user typed.
        """
        if self._opened:
            raise ConfigurationError("replace() builds a new Runtime from an unopened one")
        settable = {"url", "store", "hooks", "broker", "sagas", *RuntimeSettings.model_fields}
        unknown = set(changes) - settable
        if unknown:
            raise ConfigurationError(
                f"Runtime has no setting {sorted(unknown)[0]!r}; "
                f"settings: {', '.join(sorted(settable - {'sagas'}))}"
            )
        config: dict[str, Any] = {
            **self._config,
            "sagas": [*self.sagas.values(), *self.machines.values()],
        }
        if changes.get("url") is not None:
            config["store"] = None
        if isinstance(changes.get("broker"), str):
            changes = {**changes, "broker_url": changes.pop("broker")}
            config["broker"] = None
        overrides = {k: v for k, v in changes.items() if k in RuntimeSettings.model_fields}
        if overrides:
            config["settings"] = self.settings.model_copy(update=overrides)
        config.update({k: v for k, v in changes.items() if k not in RuntimeSettings.model_fields})
        return Runtime(**config)

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self, *, background: bool = True) -> Runtime:
        """Open the store and, with ``background``, start the background worker, if any.

        ``background=False`` opens without a worker task; ``work()`` then runs the worker
        in the caller's task (as ``sagakit worker`` does).
        """
        if self._opened:
            return self
        await self.store.open(migrate=self.migrate)
        self._opened = True
        self.leases.start()
        if self.broker is not None:
            self.relay = Relay(self.store, self.broker, owner=self.owner, hooks=self.hooks)
            for sub in self._subscriptions:
                await self._subscribe(sub)
        if self.workers:
            self.worker = Worker(
                self.store,
                self.sagas,
                leases=self.leases,
                hooks=self.hooks,
                concurrency=self.workers,
                poll_interval=self.poll_interval,
                on_finished=self._notify,
                archive_after=self.archive_after,
                delete_archived_after=self.delete_archived_after,
                machines=self.machines,
            )
            if background:
                self._worker_task = asyncio.create_task(self.worker.run(), name="sagakit-worker")
                if self.relay is not None:  # the relay runs where a worker runs
                    self._relay_task = asyncio.create_task(self.relay.run(), name="sagakit-relay")
        return self

    async def work(self, *, burst: bool = False) -> WorkerCounters:
        """Run the worker in this task until ``stop()``; with ``burst``, until idle."""
        self._require_open()
        if self.worker is None or self._worker_task is not None:
            raise ConfigurationError(
                "work() needs a Runtime opened with open(background=False) and workers >= 1"
            )
        if self.relay is None:
            return await self.worker.run(burst=burst)
        if burst:  # the sagas first, then what they published
            counters = await self.worker.run(burst=True)
            await self.relay.run(burst=True)
            return counters
        counters, _ = await asyncio.gather(self.worker.run(), self.relay.run())
        return counters

    def stop(self) -> None:
        """Ask the worker (and relay) to stop: running steps finish, checkpoint, release."""
        if self.worker is not None:
            self.worker.stop()
        if self.relay is not None:
            self.relay.stop()

    async def close(self) -> None:
        """Stop the worker gracefully (running steps finish and checkpoint), close the store."""
        if not self._opened:
            return
        if self.worker is not None and self._worker_task is not None:
            self.worker.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker_task
        if self.relay is not None and self._relay_task is not None:
            self.relay.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relay_task
        for unsubscribe in self._unsubscribe:
            await unsubscribe()
        self._unsubscribe.clear()
        if self.broker is not None:
            await self.broker.close()
        await self.leases.stop()
        await self.store.close()
        self._opened = False

    @property
    def is_open(self) -> bool:
        """Whether ``open()`` has run and ``close()`` has not."""
        return self._opened

    async def __aenter__(self) -> Runtime:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def register(self, saga: Saga) -> Saga:
        """Add a saga definition (before ``open`` if a background worker should run it)."""
        self.sagas.update(saga_registry([*self.sagas.values(), saga]))
        return saga

    # -- starting and running -------------------------------------------------------------

    def _saga(self, saga_type: str) -> Saga:
        try:
            return self.sagas[saga_type]
        except KeyError:
            known = ", ".join(sorted(self.sagas)) or "none"
            raise UnknownSagaType(
                f"no saga type {saga_type!r} is registered (registered: {known}); pass it "
                "in Runtime(sagas=[...]) or rt.register(saga)"
            ) from None

    async def run(
        self,
        saga_type: str,
        context: Mapping[str, Any] | None = None,
        *,
        saga_id: str | None = None,
        actor: str | None = None,
        source_ip: str | None = None,
    ) -> SagaRecord:
        """Run a saga in this task to its end and return its final state.

        With the id of an existing saga, return that saga (waiting for it to finish if it
        is running elsewhere); it never runs twice.
        """
        saga = self._saga(saga_type)
        record = new_record(
            saga, context, saga_id, owner=self.owner, lease=self.leases.lease_until()
        )
        self._require_open()
        stored, created = await self.store.create(record, [started_event(record, actor, source_ip)])
        if not created:
            return await self._join(stored)
        self.hooks.saga_started(record)
        final = await self._execute(saga, record, started_by=actor)
        return final if final is not None else await self.wait(record.id)

    async def start(
        self,
        saga_type: str,
        context: Mapping[str, Any] | None = None,
        *,
        saga_id: str | None = None,
        actor: str | None = None,
        source_ip: str | None = None,
    ) -> str:
        """Durably enqueue a saga and return its id at once; a worker runs it."""
        saga = self._saga(saga_type)
        record = new_record(saga, context, saga_id)
        self._require_open()
        _, created = await self.store.create(record, [started_event(record, actor, source_ip)])
        if created:
            self.hooks.saga_started(record)
            if self.worker is not None:
                self.worker.wake()
        return record.id

    async def _join(self, stored: SagaRecord) -> SagaRecord:
        """Finish an existing saga: return it if done, take it over if free, else wait."""
        if stored.is_terminal or stored.status == SagaStatus.PAUSED:
            return stored
        saga = self.sagas.get(stored.saga_type)
        if saga is not None:
            now = utcnow()
            claimed = await self.store.claim(
                self.owner,
                now=now,
                lease_until=now + self.leases.lease_until(),
                limit=1,
                saga_ids=[stored.id],
            )
            if claimed:
                final = await self._execute(saga, claimed[0])
                if final is not None:
                    return final
        return await self.wait(stored.id)

    async def _execute(
        self, saga: Saga, record: SagaRecord, *, started_by: str | Unknown | None = Unknown.ACTOR
    ) -> SagaRecord | None:
        executor = self._executors.get(saga.name)
        if executor is None:
            executor = SagaExecutor(self.store, saga, owner=self.owner, hooks=self.hooks)
            self._executors[saga.name] = executor
        self.leases.hold(record)
        try:
            final = await executor.run(record, started_by=started_by)
        finally:
            self.leases.drop(record.id)
        if final is not None:
            self._notify(final)
        return final

    def _notify(self, record: SagaRecord) -> None:
        waiter = self._finished.pop(record.id, None)
        if waiter is not None:
            waiter.set()

    def _require_open(self) -> None:
        if not self._opened:
            raise ConfigurationError(
                "the Runtime is not open; use `async with Runtime(...) as rt:` or "
                "`await rt.open()` first"
            )
