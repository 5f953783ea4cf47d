"""Test helpers shipped with sagakit: the store contract suite, ``explore`` for sagas, and
``TestBed`` (a Runtime under a virtual clock) for sagas and state machines."""

from .contract import StoreContract
from .explore import Report, Run, explore
from .testbed import TestBed

__all__ = ["Report", "Run", "StoreContract", "TestBed", "explore"]
