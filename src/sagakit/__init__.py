"""sagakit: durable sagas — steps with compensations, checkpointed in your database."""

from .context import StepContext
from .definition import Retry, Saga, Step
from .errors import (
    ConcurrencyError,
    ConfigurationError,
    DefinitionError,
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
    UnknownSagaType,
)
from .hooks import SagaHooks
from .operator import Action
from .runtime import Runtime
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
    # running
    "Action",
    "Runtime",
    "SagaHooks",
    "Worker",
    "WorkerCounters",
    # state
    "Reason",
    "SagaEvent",
    "SagaRecord",
    "SagaStatus",
    # stores
    "MemoryStore",
    "SagaStore",
    "open_store",
    # errors
    "ConcurrencyError",
    "ConfigurationError",
    "DefinitionError",
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
    "UnknownSagaType",
    "__version__",
]
