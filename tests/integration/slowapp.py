"""An application that takes a while to import (as big apps do), for early-SIGTERM tests.

It notes ``imported`` in $CRASH_LOG as soon as its import starts, then keeps importing.
"""

from __future__ import annotations

import os
import time

with open(os.environ["CRASH_LOG"], "a") as f:
    f.write(f"{time.time():.3f} importing slowapp - - {os.getpid()}\n")
time.sleep(2)  # the application's own slow start-up, not a wait of the test

from crashapp import sagas  # noqa: E402

__all__ = ["sagas"]
