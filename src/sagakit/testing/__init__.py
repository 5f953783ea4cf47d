"""Test helpers shipped with sagakit: the store contract suite, and ``explore`` for sagas."""

from .contract import StoreContract
from .explore import Report, Run, explore

__all__ = ["Report", "Run", "StoreContract", "explore"]
