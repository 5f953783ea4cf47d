"""The ``sagakit`` command line."""

from __future__ import annotations

import typer

from .event_cmds import register_event_commands
from .ops_cmds import register_ops_commands
from .outbox_cmds import register_outbox_commands
from .serve_cmd import serve
from .store_cmds import register_store_commands
from .transfer_cmds import register_transfer_commands
from .worker_cmd import worker

app = typer.Typer(
    name="sagakit",
    help="Run, inspect and repair durable sagas.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(worker)
app.command()(serve)
register_store_commands(app)
register_ops_commands(app)
register_transfer_commands(app)
register_outbox_commands(app)
register_event_commands(app)


def main() -> None:
    """Entry point of the ``sagakit`` console script."""
    app()


__all__ = ["app", "main"]
