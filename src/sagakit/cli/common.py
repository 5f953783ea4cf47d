"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Column, Table

from ..errors import ConfigurationError, SagaError

T = TypeVar("T")

console = Console()
errors = Console(stderr=True, soft_wrap=True)  # one error, one line: grep-able

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


#: ``--db`` where a Runtime named by ``--app`` may bring its own store URL.
OptionalDbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="SAGAKIT_DATABASE_URL",
        help="Store URL, e.g. sqlite:///sagas.db or postgresql://user@host/db "
        "(default: the URL of the Runtime that --app names).",
        show_envvar=True,
    ),
]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one clear error line and exit (2: the command was given something wrong)."""
    errors.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def wrapping_table(*headers: str) -> Table:
    """A Rich table whose cells wrap instead of being cut, so nothing is hidden."""
    return Table(*(Column(h, overflow="fold") for h in headers))


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine; turn sagakit errors into one line and an exit status.

    2: the command was given something wrong (a setting, URL or file); 1: anything else.
    """
    try:
        return asyncio.run(make())  # type: ignore[arg-type]
    except ConfigurationError as e:
        errors.print(f"[red]error:[/red] {e}", highlight=False)
        sys.exit(2)
    except SagaError as e:
        errors.print(f"[red]error:[/red] {e}", highlight=False)
        sys.exit(1)
