"""The one exception hierarchy of sagakit: everything raised on purpose is a ``SagaError``."""

from __future__ import annotations


class SagaError(Exception):
    """Root of every error sagakit raises on purpose."""


class DefinitionError(SagaError):
    """A saga or step definition is invalid; the message names the saga, step and fix."""


class ConfigurationError(SagaError):
    """A setting or store URL is invalid or unusable; the message names the value and fix."""


class UnknownSagaType(SagaError):
    """A saga type was asked for that no registered definition provides."""


class SagaNotFound(SagaError):
    """No saga exists with the given id."""


class InvalidTransition(SagaError):
    """A status change that the transition table does not allow."""


class OperatorActionRefused(InvalidTransition):
    """An operator action (retry, pause, ...) does not apply to the saga's current state."""


class StepFailed(SagaError):
    """A step or compensation raised; carries the original error as ``__cause__``."""


class StepTimeout(StepFailed):
    """A step or compensation ran past its timeout."""


class NotSerializable(StepFailed):
    """A context value or step result cannot be stored as JSON."""


class StoreError(SagaError):
    """A persistence operation failed."""


class StoreUnavailable(StoreError):
    """The database cannot be reached right now; the operation may be retried."""


class TransactionConflict(StoreUnavailable):
    """The database rolled the transaction back to break a deadlock; retry it at once."""


class CheckpointTooLarge(StoreError):
    """A saga's checkpoint is larger than the database accepts in one statement."""


class ConcurrencyError(StoreError):
    """A write lost an optimistic-lock race: the saga changed since it was read.

    The writer must drop its copy of the saga; it never overwrites.
    """


class DuplicateMessage(ConcurrencyError):
    """A checkpoint's inbox mark was already recorded: that consumer applied the message."""


class SagaTimeout(SagaError):
    """Waiting for a saga ran past the given timeout; the saga itself goes on."""
