"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Column, Table

from ..errors import SagaError

T = TypeVar("T")

console = Console()
errors = Console(stderr=True)

#: ``--db``: every command that touches a store takes it, or SAGAKIT_DATABASE_URL.
DbOption = Annotated[
    str,
    typer.Option(
        "--db",
        envvar="SAGAKIT_DATABASE_URL",
        help="Store URL, e.g. sqlite:///sagas.db or postgresql://user@host/db.",
        show_envvar=True,
    ),
]


def wrapping_table(*headers: str) -> Table:
    """A Rich table whose cells wrap instead of being cut, so nothing is hidden."""
    return Table(*(Column(h, overflow="fold") for h in headers))


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine; turn sagakit errors into a one-line message and exit code 1."""
    try:
        return asyncio.run(make())  # type: ignore[arg-type]
    except SagaError as e:
        errors.print(f"[red]error:[/red] {e}", highlight=False)
        sys.exit(1)
