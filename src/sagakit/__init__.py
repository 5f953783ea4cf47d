"""sagakit: durable sagas — steps with compensations, checkpointed in your database."""

from .admin.operator import Action
from .errors import (
    CheckpointTooLarge,
    ConcurrencyError,
    ConfigurationError,
    DefinitionError,
    DuplicateMessage,
    InvalidTransition,
    NotSerializable,
    OperatorActionRefused,
    SagaError,
    SagaNotFound,
    SagaTimeout,
    StepFailed,
    StepTimeout,
    StoreError,
    StoreUnavailable,
    TransactionConflict,
    UnknownSagaType,
)
from .history import EventType
from .hooks import SagaHooks
from .machines.definition import State, StateMachine
from .machines.instance import Instance
from .messaging import Broker, Envelope, MemoryBroker, NatsJetStream, RabbitMQ
from .orchestration.context import StepContext
from .orchestration.definition import Saga
from .orchestration.step import Retry, Step
from .outcomes import Delivery, Outcome
from .runtime import Runtime
from .runtime_events import SendResult
from .status import Reason, SagaStatus
from .store import MemoryStore, SagaEvent, SagaRecord, SagaStore, open_store
from .worker import Worker, WorkerCounters

__version__ = "0.1.0"

__all__ = [
    # definitions
    "Retry",
    "Saga",
    "Step",
    "StepContext",
    "StateMachine",
    "State",
    "Instance",
    "Delivery",
    "Outcome",
    "SendResult",
    # running
    "Action",
    "Runtime",
    "EventType",
    "SagaHooks",
    "Worker",
    "WorkerCounters",
    # state
    "Reason",
    "SagaEvent",
    "SagaRecord",
    "SagaStatus",
    # messaging
    "Broker",
    "Envelope",
    "MemoryBroker",
    "NatsJetStream",
    "RabbitMQ",
    # stores
    "MemoryStore",
    "SagaStore",
    "open_store",
    # errors
    "CheckpointTooLarge",
    "ConcurrencyError",
    "ConfigurationError",
    "DefinitionError",
    "DuplicateMessage",
    "InvalidTransition",
    "NotSerializable",
    "OperatorActionRefused",
    "SagaError",
    "SagaNotFound",
    "SagaTimeout",
    "StepFailed",
    "StepTimeout",
    "StoreError",
    "StoreUnavailable",
    "TransactionConflict",
    "UnknownSagaType",
    "__version__",
]
