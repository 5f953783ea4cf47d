"""Test helpers shipped with sagakit: the store contract suite any adapter must pass."""

from .contract import StoreContract

__all__ = ["StoreContract"]
