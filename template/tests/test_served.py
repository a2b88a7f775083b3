"""The app under a real uvicorn process: what only a server and real sockets show."""

import asyncio
import socket
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select

from app.core.config import Settings
from app.models import metadata
from app.models.item import DESCRIPTION_MAX_LENGTH
from tests.served import Uvicorn, uvicorn

ITEMS = "/api/v1/items"
CONCURRENT = 25
TCP_SEND_BUFFER_MAX = Path("/proc/sys/net/ipv4/tcp_wmem")
# A receive buffer of a fixed small size: left to grow, the kernel would take in tens of MB of
# an export the client never reads.
SMALL_RECEIVE_BUFFER = [(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)]


@pytest.fixture(scope="module")
def server(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Uvicorn]:
    env = {
        "DATABASE_URL": settings.database_url,
        "EXPORT_CONCURRENCY": str(settings.export_concurrency),
    }
    redis_url: str | None = getattr(settings, "redis_url", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    with uvicorn("app.main:app", env, tmp_path_factory.mktemp("served") / "uvicorn.log") as served:
        yield served


def _export_bytes() -> int:
    """Bytes an export must exceed to stay blocked on a client that reads nothing and keeps a
    small receive buffer: twice what the server's send buffer can grow to (tcp_wmem's third
    number)."""
    most = 4 * 1024 * 1024
    if TCP_SEND_BUFFER_MAX.exists():
        most = max(most, int(TCP_SEND_BUFFER_MAX.read_text().split()[2]))
    return 2 * most


async def _copies_of(app: FastAPI, item_id: str, count: int) -> None:
    """`count` copies of the item in one statement."""
    items = metadata.tables["items"]
    async with app.state.engine.begin() as connection:
        query = select(items).where(items.c.id == uuid.UUID(item_id))
        row = (await connection.execute(query)).mappings().one()
        await connection.execute(insert(items), [{**row, "id": uuid.uuid4()} for _ in range(count)])


@pytest.mark.anyio
async def test_exports_beyond_the_limit_are_refused_at_once_and_reads_are_served(
    app: FastAPI,
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    server: Uvicorn,
    settings: Settings,
) -> None:
    """Exports whose clients read slowly hold their connection: beyond EXPORT_CONCURRENCY one
    more is a 503 at once, and item reads made meanwhile are all served (they waited out the
    pool and got 503 when exports could take every connection)."""
    created = await client.post(
        ITEMS, json={"name": "x", "description": "d" * DESCRIPTION_MAX_LENGTH}
    )
    assert created.status_code == 201, created.text
    item_id = created.json()["id"]
    await _copies_of(app, item_id, _export_bytes() // DESCRIPTION_MAX_LENGTH)
    limits = httpx.Limits(max_connections=2 * CONCURRENT)
    async with (
        httpx.AsyncClient(
            base_url=server.url,
            # Uncompressed: the test's rows are alike, and gzipped they would fit in any buffer.
            headers={**auth_headers, "Accept-Encoding": "identity"},
            transport=httpx.AsyncHTTPTransport(limits=limits, socket_options=SMALL_RECEIVE_BUFFER),
            timeout=30,
        ) as http,
        AsyncExitStack() as streams,
    ):

        async def start_export() -> httpx.Response:
            # Headers only: the export streams until the socket's buffers are full, then waits.
            return await streams.enter_async_context(http.stream("GET", f"{ITEMS}/export.csv"))

        exports = await asyncio.gather(*(start_export() for _ in range(CONCURRENT)))
        reads = await asyncio.gather(*(http.get(f"{ITEMS}/{item_id}") for _ in range(CONCURRENT)))
        assert [read.status_code for read in reads] == [200] * CONCURRENT
        statuses = Counter(export.status_code for export in exports)
        assert statuses == {
            200: settings.export_concurrency,
            503: CONCURRENT - settings.export_concurrency,
        }
        refused = next(export for export in exports if export.status_code == 503)
        await refused.aread()
    assert refused.headers["Retry-After"] == "5"
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 503
