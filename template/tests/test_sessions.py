"""Which engine serves which request, the request's one session, and pooled connections that
the server closed.

Plain reads run on the autocommit engine (no BEGIN/ROLLBACK around them); writes and the CSV
export run in a transaction on the other. A request has one session, whichever dependencies ask
for it, closed (and its slot of the session gate freed) once the response has been sent.
Pre-ping is off: a pooled connection the server has ended is dropped at checkout (the driver
knows it is closed), so the next request still works.
"""

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request
from httpx import ASGITransport, AsyncClient
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import Settings
from app.db.session import connection_of
from app.db.url import to_async_url
from app.dependencies.db import SessionDep, open_session, request_session

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


def free_slots(app: FastAPI) -> int:
    """The session gate's free slots."""
    free: int = app.state.session_gate._slots._value
    return free


PROBE = "INSERT INTO alembic_version (version_num) VALUES ('session_probe')"
PROBED = "SELECT count(*) FROM alembic_version WHERE version_num = 'session_probe'"


async def test_a_request_has_one_session_whatever_asks_and_frees_it_after_the_response(
    app: FastAPI, client: AsyncClient
) -> None:
    """A service dependency calls `request_session`, another one takes `SessionDep`: one
    session, one slot of the gate; after the response it holds no connection and no slot."""
    seen: list[AsyncSession] = []

    async def service(request: Request) -> None:
        seen.append(await request_session(request))

    async def endpoint(session: SessionDep, _service: Annotated[None, Depends(service)]) -> int:
        seen.append(session)
        await connection_of(session)  # a transaction: the session holds a connection
        return free_slots(app)

    app.add_api_route("/one-session", endpoint, methods=["POST"])
    full = free_slots(app)
    response = await client.post("/one-session")
    assert response.status_code == 200, response.text
    assert response.json() == full - 1
    assert len(seen) == 2
    assert seen[0] is seen[1]
    assert not seen[0].in_transaction()  # closed: its connection went back to the pool
    assert free_slots(app) == full


async def test_a_request_that_fails_rolls_its_session_back_and_frees_the_slot(
    app: FastAPI, client: AsyncClient
) -> None:
    async def fails(session: SessionDep) -> None:
        await (await connection_of(session)).execute(text(PROBE))
        raise RuntimeError("a bug after the write")

    app.add_api_route("/fails", fails, methods=["POST"])
    full = free_slots(app)
    response = await client.post("/fails")
    assert response.status_code == 500, response.text
    assert free_slots(app) == full
    async with app.state.engine.connect() as connection:
        assert (await connection.execute(text(PROBED))).scalar_one() == 0


async def test_open_session_gives_a_block_a_session_and_a_slot_of_its_own(
    app: FastAPI, client: AsyncClient
) -> None:
    """The block's session commits apart from the request's, which fails afterwards."""
    slots: dict[str, object] = {}

    async def endpoint(request: Request, session: SessionDep) -> None:
        await connection_of(session)
        async with open_session(request) as own:
            slots["own"] = own is not session
            slots["inside"] = free_slots(app)
            await (await connection_of(own)).execute(text(PROBE))
            await own.commit()
        slots["after"] = free_slots(app)
        raise RuntimeError("the request fails; the block committed")

    app.add_api_route("/own-session", endpoint, methods=["POST"])
    full = free_slots(app)
    try:
        response = await client.post("/own-session")
        assert response.status_code == 500, response.text
        assert slots == {"own": True, "inside": full - 2, "after": full - 1}
        assert free_slots(app) == full
        async with app.state.engine.connect() as connection:
            assert (await connection.execute(text(PROBED))).scalar_one() == 1
    finally:
        async with app.state.engine.begin() as connection:
            await connection.execute(
                text("DELETE FROM alembic_version WHERE version_num = 'session_probe'")
            )


async def test_a_session_the_lost_database_cannot_close_is_logged_and_frees_its_slot(
    app: FastAPI, client: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The response has gone out when the session is closed: nothing to answer, but the slot
    must come back (a leaked slot per lost connection would end in every request waiting)."""
    kept: list[AsyncSession] = []

    async def lost(session: SessionDep) -> None:
        await connection_of(session)
        kept.append(session)

        async def unreachable() -> None:
            raise ConnectionResetError("the database went away")

        session.close = unreachable  # type: ignore[method-assign]

    app.add_api_route("/lost", lost, methods=["POST"])
    full = free_slots(app)
    try:
        with caplog.at_level(logging.WARNING, logger="app.dependencies.db"):
            response = await client.post("/lost")
        assert response.status_code == 200, response.text
        assert "closing a session failed" in caplog.text
        assert free_slots(app) == full
    finally:
        for session in kept:
            del session.close
            await session.close()


async def test_the_request_session_needs_the_session_middleware() -> None:
    """Without it no one would close the session or free its slot: refused, not leaked."""
    bare = FastAPI()

    async def endpoint(session: SessionDep) -> None:
        raise AssertionError("never reached")

    bare.add_api_route("/", endpoint)
    async with AsyncClient(transport=ASGITransport(app=bare), base_url="http://test") as http:
        with pytest.raises(RuntimeError, match="SessionMiddleware"):
            await http.get("/")


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
