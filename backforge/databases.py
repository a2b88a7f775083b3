"""The one table of databases a variant can choose (the `database` answer): which server kind
runs it, the URL that needs no server, and whether `bench` can measure it.

`check` (the OpenAPI step's offline URL, the full tier's per-variant database), `bench` (which
variants it measures) and the servers (`backforge.servers`, keyed by server kind) read it.
Adding a database is one row here, one server module, and the template's own support.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from backforge.model import Variant
from backforge.servers import ServiceKind

UNREACHABLE_PORT: Final = 9
"""The discard port: a server URL that the OpenAPI step hands out, which nothing answers."""


@dataclass(frozen=True)
class Database:
    name: str
    """The `database` answer."""
    server: ServiceKind | None
    """The server kind that runs it for the full tier and bench; None for an embedded database."""
    benchmarked: bool
    """Whether `bench` measures it (the floor app speaks asyncpg, so PostgreSQL only)."""

    def offline_url(self, project: Path) -> str:
        """A DATABASE_URL of this kind that needs no server (nothing may connect to it)."""
        if self.server is None:
            return f"sqlite:///{project / 'openapi-check.db'}"
        return f"{self.name}://backforge:backforge@127.0.0.1:{UNREACHABLE_PORT}/backforge"

    def embedded_url(self, project: Path) -> str:
        """The database file of an embedded database, inside the project."""
        return f"sqlite:///{project / 'variant.db'}"


DATABASES: Final[Mapping[str, Database]] = {
    "sqlite": Database("sqlite", server=None, benchmarked=False),
    "postgresql": Database("postgresql", server="postgresql", benchmarked=True),
    "mysql": Database("mysql", server="mysql", benchmarked=False),
}


def database_of(variant: Variant) -> Database:
    """The row of a variant's `database` (its answer, or copier.yml's default)."""
    name = variant.database
    try:
        return DATABASES[name]
    except KeyError:
        raise ValueError(
            f"unknown database {name!r}; backforge knows {', '.join(DATABASES)}"
        ) from None
