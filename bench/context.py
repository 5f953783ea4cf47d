"""What a case gets: its parameters and fresh databases, removed when the case ends."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.backends import Backend, Database


@dataclass(slots=True)
class CaseContext:
    """Parameters of one case run, and where its databases go.

    ``prefix`` starts the name of every database the case makes (a schema name on
    PostgreSQL), so that the parent can sweep up whatever a crashed case left behind.
    """

    backend: Backend
    workdir: Path
    params: dict[str, Any] = field(default_factory=dict)
    prefix: str = "skb"
    made: list[Database] = field(default_factory=list)

    def database(self, label: str) -> Database:
        """Return a new, empty database for this case."""
        name = re.sub(r"[^a-z0-9_]", "_", f"{self.prefix}_{label}_{len(self.made) + 1}".lower())
        db = self.backend.database(self.workdir, name)
        self.made.append(db)
        return db

    def drop_databases(self) -> None:
        """Remove every database this case made."""
        while self.made:
            self.backend.drop(self.made.pop())

    def number(self, name: str) -> int:
        """Return the integer parameter ``name``."""
        return int(self.params[name])

    def text(self, name: str) -> str:
        """Return the string parameter ``name``."""
        return str(self.params[name])
