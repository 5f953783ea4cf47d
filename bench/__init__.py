"""sagakit's benchmark suite: ``python -m bench`` (or ``make bench``) prints JSON and a table.

Every case runs in its own interpreter (``bench.child``) on a fresh temporary database,
and every comparison is a ratio of numbers measured in the same run on the same machine.
Benchmarks are never run as tests; ``tests/bench`` only smoke-tests that this runs.
"""
