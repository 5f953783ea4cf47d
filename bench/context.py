"""What a case gets: its parameters and a fresh database in its own temporary directory."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.backends import Backend, Database


@dataclass(slots=True)
class CaseContext:
    """Parameters of one case run, and where its databases go."""

    backend: Backend
    workdir: Path
    params: dict[str, Any] = field(default_factory=dict)
    _made: int = 0

    def database(self, label: str) -> Database:
        """Return a new, empty database for this case."""
        self._made += 1
        return self.backend.database(self.workdir, f"{label}-{self._made}")

    def number(self, name: str) -> int:
        """Return the integer parameter ``name``."""
        return int(self.params[name])

    def text(self, name: str) -> str:
        """Return the string parameter ``name``."""
        return str(self.params[name])
