"""pytest fixtures for testing sagas (loaded by pytest when sagakit is installed).

- ``sagakit_clock``: a :class:`~sagakit.clock.VirtualClock` in use for the test.
- ``sagakit_testbed``: a factory, ``bed = await sagakit_testbed(saga, machine, ...)``,
  giving an open :class:`~sagakit.testing.TestBed` that is closed after the test
  (needs pytest-asyncio, as async tests do).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from ..clock import VirtualClock, use_clock
from .testbed import TestBed

OpenTestBed = Callable[..., Awaitable[TestBed]]


@pytest.fixture
def sagakit_clock() -> Iterator[VirtualClock]:
    """A virtual clock that every sagakit timer in this test reads; move it with advance()."""
    clock = VirtualClock()
    with use_clock(clock):
        yield clock


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - without pytest-asyncio there are no async tests
    pass
else:

    @pytest_asyncio.fixture
    async def sagakit_testbed() -> AsyncIterator[OpenTestBed]:
        """Open test beds for sagas and machines: ``await sagakit_testbed(saga, ...)``."""
        opened: list[TestBed] = []

        async def open_bed(*definitions: Any, **options: Any) -> TestBed:
            bed = await TestBed(*definitions, **options).open()
            opened.append(bed)
            return bed

        try:
            yield open_bed
        finally:
            for bed in reversed(opened):
                await bed.close()
