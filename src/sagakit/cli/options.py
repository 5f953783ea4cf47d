"""Options more than one command takes, beyond ``--db`` (in ``common``)."""

from __future__ import annotations

from typing import Annotated

import typer

#: ``--broker``: where the relay publishes; overrides the broker of the app's Runtime.
BrokerOption = Annotated[
    str | None,
    typer.Option(
        "--broker",
        envvar="SAGAKIT_BROKER_URL",
        show_envvar=True,
        help="Broker URL, e.g. amqp://guest:guest@127.0.0.1:5672/ (default: the broker of "
        "the Runtime that --app names).",
    ),
]
