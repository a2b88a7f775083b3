"""Which engine serves which request, and pooled connections that the server closed.

Plain reads run on the autocommit engine (no BEGIN/ROLLBACK around them); writes and the CSV
export run in a transaction on the other. Pre-ping is off: a pooled connection the server has
ended is dropped at checkout (the driver knows it is closed), so the next request still works.
"""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from app.core.config import Settings
from app.db.session import connection_of
from app.db.url import to_async_url

pytestmark = pytest.mark.anyio

ITEMS = "/api/v1/items"


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements `engine` runs inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_plain_reads_run_on_the_autocommit_engine(app: FastAPI, client: AsyncClient) -> None:
    created = await client.post(ITEMS, json={"name": "read me"})
    assert created.status_code == 201
    with statements(app.state.engine) as writes, statements(app.state.read_engine) as reads:
        assert (await client.get(f"{ITEMS}/{created.json()['id']}")).status_code == 200
        assert (await client.get(ITEMS)).status_code == 200
    assert writes == []
    assert any("FROM items" in statement for statement in reads)


async def test_the_read_engine_commits_each_statement_on_its_own(app: FastAPI) -> None:
    probe = text("INSERT INTO alembic_version (version_num) VALUES ('autocommit_probe')")
    async with app.state.read_session_factory() as session:
        await session.exec(probe)
        # closed without commit: in a transaction, the row would be rolled back now
    try:
        async with app.state.engine.connect() as connection:
            found = await connection.execute(
                text("SELECT count(*) FROM alembic_version WHERE version_num = 'autocommit_probe'")
            )
            assert found.scalar_one() == 1
    finally:
        async with app.state.engine.begin() as connection:
            await connection.execute(
                text("DELETE FROM alembic_version WHERE version_num = 'autocommit_probe'")
            )


async def test_writes_and_the_export_run_in_a_transaction(
    app: FastAPI, client: AsyncClient
) -> None:
    with statements(app.state.engine) as writes, statements(app.state.read_engine) as reads:
        created = await client.post(ITEMS, json={"name": "written"})
        updated = await client.patch(f"{ITEMS}/{created.json()['id']}", json={"name": "renamed"})
        export = await client.get(f"{ITEMS}/export.csv")
    assert (created.status_code, updated.status_code, export.status_code) == (201, 200, 200)
    assert "renamed" in export.text
    # With billing and rate_limit, the rate limiter reads the caller's plan (billing_accounts)
    # before any route runs: a plain read of its own. The requests' statements are all written.
    assert [statement for statement in reads if "billing_accounts" not in statement] == []
    assert any(statement.startswith("INSERT INTO items") for statement in writes)
    assert any(statement.startswith("UPDATE items") for statement in writes)


async def test_a_session_is_asked_for_its_connection_once_per_transaction(app: FastAPI) -> None:
    async with app.state.session_factory() as session:
        asked = 0
        ask = session.connection

        async def counted(**options: Any) -> AsyncConnection:
            nonlocal asked
            asked += 1
            connection: AsyncConnection = await ask(**options)
            return connection

        session.connection = counted
        first = await connection_of(session)
        assert await connection_of(session) is first
        assert asked == 1
        await session.commit()  # the transaction's connection goes back to the pool
        after = await connection_of(session)
        assert asked == 2
        assert (await after.execute(text("SELECT 1"))).scalar_one() == 1
        await session.rollback()
        again = await connection_of(session)
        assert asked == 3
        assert (await again.execute(text("SELECT 2"))).scalar_one() == 2


END_OTHER_CONNECTIONS = {
    "postgresql": [
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ],
    "mysql": [
        "SELECT id FROM information_schema.processlist "
        "WHERE db = DATABASE() AND id <> CONNECTION_ID()"
    ],
}


async def end_other_connections(settings: Settings) -> None:
    """What a database restart does to the app's idle pooled connections: the server ends them."""
    engine = create_async_engine(to_async_url(settings.database_url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            dialect = connection.dialect.name
            result = await connection.execute(text(END_OTHER_CONNECTIONS[dialect][0]))
            if dialect == "mysql":
                for (connection_id,) in result.all():
                    await connection.execute(text(f"KILL {int(connection_id)}"))
    finally:
        await engine.dispose()


async def test_pooled_connections_the_server_ended_are_replaced_without_an_error(
    app: FastAPI, client: AsyncClient, settings: Settings
) -> None:
    if app.state.engine.dialect.name not in END_OTHER_CONNECTIONS:
        pytest.skip("SQLite has no server to end a connection")
    created = await client.post(ITEMS, json={"name": "survivor"})  # both pools hold a connection
    assert (await client.get(ITEMS)).status_code == 200
    await end_other_connections(settings)
    await asyncio.sleep(0.5)  # the event loop reads the servers' goodbye: the driver knows
    assert (await client.get(f"{ITEMS}/{created.json()['id']}")).status_code == 200
    assert (await client.post(ITEMS, json={"name": "after"})).status_code == 201
