"""``python -m sagakit`` is the ``sagakit`` command."""

from .cli import main

main()
