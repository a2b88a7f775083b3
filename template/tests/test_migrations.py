"""The migration chain: every head reached, no drift, down to base and up again.

The template's revisions form one line per capability (core, then auth, then tenancy); a
project's own revisions, and capabilities switched on later, may add heads, so everything
upgrades to `heads`.
"""

import asyncio
from pathlib import Path

from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.url import to_async_url
from tests.support.database import (
    alembic_config,
    configured_database_url,
    create_database,
    drop_database,
    migrate,
)


def _current_heads(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


async def _applied(url: str) -> set[str]:
    """The revisions the database records as applied (its heads)."""
    engine = create_async_engine(to_async_url(url))
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_current_heads)
    finally:
        await engine.dispose()


def test_every_revision_descends_from_the_core_revision() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite:///unused.db"))
    bases = script.get_bases()
    assert bases == ["core_0001"], f"the chain has other roots: {bases}"
    for revision in script.walk_revisions():
        chain = {r.revision for r in script.iterate_revisions(revision.revision, "base")}
        assert "core_0001" in chain, revision.revision


def test_round_trip_to_every_head_without_drift(tmp_path: Path) -> None:
    server_url = configured_database_url()
    url = create_database(server_url, tmp_path)
    try:
        config = alembic_config(url)
        heads = set(ScriptDirectory.from_config(config).get_heads())
        migrate(url)
        assert asyncio.run(_applied(url)) == heads
        command.check(config)
        command.downgrade(config, "base")
        assert asyncio.run(_applied(url)) == set()
        migrate(url)
        command.check(config)
        command.upgrade(config, "heads")  # nothing left to do
        assert asyncio.run(_applied(url)) == heads
        command.check(config)
    finally:
        drop_database(server_url, url)
