"""The app under a real uvicorn process: what only a server and real sockets show."""

import asyncio
import json
import socket
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select

from app.core.config import Settings
from app.middleware.input_guard import DRAIN_SECONDS
from app.models import metadata
from tests.support.uvicorn import Uvicorn, uvicorn

ITEMS = "/api/v1/items"
DESCRIPTION_MAX_LENGTH = 1000  # the longest description an item takes (app/schemas/item.py)
BODY_BYTES = 20 * 1024 * 1024  # twenty times MAX_REQUEST_BODY_BYTES
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
        # As many sessions as the suite's settings, all of them pooled: a connection, once open,
        # stays open (with overflow, every one beyond DB_POOL_SIZE is closed when it comes back).
        "DB_POOL_SIZE": str(_sessions(settings)),
        "DB_MAX_OVERFLOW": "0",
    }
    redis_url: str | None = getattr(settings, "redis_url", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    prices: dict[str, str] | None = getattr(settings, "stripe_prices", None)
    if prices:  # billing: the plans the suite's accounts pay for
        env["STRIPE_PRICES"] = json.dumps(prices)
    with uvicorn("app.main:app", env, tmp_path_factory.mktemp("served") / "uvicorn.log") as served:
        yield served


def _sessions(settings: Settings) -> int:
    """The session gate's size: the requests that hold a session at once."""
    return settings.db_pool_size + settings.db_max_overflow


def _connect(server: Uvicorn) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=30)


def _post_head(length: int) -> bytes:
    return (
        f"POST {ITEMS} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Accept-Encoding: gzip\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def _read_response(connection: socket.socket) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of one HTTP/1.1 response with a Content-Length."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        assert chunk, f"the connection closed before a response: {received!r}"
        received += chunk
    head, body = received.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.lower(): value.strip() for name, value in (line.split(":", 1) for line in lines[1:])
    }
    while len(body) < int(headers["content-length"]):
        chunk = connection.recv(65536)
        assert chunk, "the connection closed within the response body"
        body += chunk
    return int(lines[0].split()[1]), json.loads(body)


def test_a_client_that_sends_a_large_body_before_reading_gets_the_413(server: Uvicorn) -> None:
    """The body is read and dropped after the 413: a server that closed while it still arrived
    reset the connection, and the client lost the answer."""
    with _connect(server) as connection:
        connection.sendall(_post_head(BODY_BYTES) + b"[" + b"1," * (BODY_BYTES // 2 - 1) + b"1")
        status, problem = _read_response(connection)
    assert status == 413
    assert problem["status"] == 413
    response = httpx.post(
        f"{server.url}{ITEMS}",
        content=b"x" * BODY_BYTES,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_a_client_that_stops_sending_gets_the_413_at_once_and_is_closed_later(
    server: Uvicorn,
) -> None:
    """The 413 goes out as soon as the length is known; the server waits `DRAIN_SECONDS` at
    most for the rest of the body, then closes."""
    with _connect(server) as connection:
        connection.sendall(_post_head(BODY_BYTES) + b"[1,")
        started = time.monotonic()
        status, _ = _read_response(connection)
        answered = time.monotonic() - started
        assert connection.recv(1) == b""  # closed by the server
        closed = time.monotonic() - started
    assert status == 413
    assert answered < DRAIN_SECONDS / 2, answered
    assert DRAIN_SECONDS - 0.5 < closed < DRAIN_SECONDS + 5, closed


def _export_bytes() -> int:
    """Bytes an export must exceed to stay blocked on a client that reads nothing and keeps a
    small receive buffer: twice what the server's send buffer can grow to (tcp_wmem's third
    number)."""
    most = 4 * 1024 * 1024
    if TCP_SEND_BUFFER_MAX.exists():
        most = max(most, int(TCP_SEND_BUFFER_MAX.read_text().split()[2]))
    return 2 * most


async def _open_connections(send: Callable[[], Awaitable[httpx.Response]], count: int) -> None:
    """Have the server open `count` connections of an engine, by as many concurrent requests.

    A new connection (a server process forked, authenticated) must open within
    DB_CONNECT_TIMEOUT, and a loaded machine may miss that: a request then answers 503 although
    the session gate admitted it. The rounds go on until one is served in full (the connections
    the earlier rounds opened are reused), so that the requests made while exports stream (reads
    on the read engine, the exports' transactions on the other) need none.
    """
    for _ in range(10):
        answers = await asyncio.gather(*(send() for _ in range(count)))
        if all(answer.is_success for answer in answers):
            return
    refused = [answer.text for answer in answers if not answer.is_success]
    raise AssertionError(f"{count} concurrent requests were never all served: {refused}")


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
    more is a 503 at once, and as many item reads as the sessions the exports leave free, made
    meanwhile, are all served (they waited out the pool and got 503 when exports could take
    every connection). No more reads than that: a read beyond them waits for a session for
    DB_POOL_TIMEOUT, which a loaded machine may well exceed, and 503 is then the right answer.

    Both engines' connections are opened before the exports start: opened while four exports
    fill their sockets, fifteen new connections missed DB_CONNECT_TIMEOUT on a loaded machine
    (asyncpg's connect timed out; the gate had admitted every read), and an export whose
    connection missed it answered 503 and freed its slot for a fifth."""
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
        await _open_connections(lambda: http.get(f"{ITEMS}/{item_id}"), _sessions(settings))
        # The exports' transactions are the other engine's: writes open its connections (an
        # update, which no plan limit refuses; they wait on the row's lock, each holding one).
        await _open_connections(
            lambda: http.patch(f"{ITEMS}/{item_id}", json={"name": "x"}),
            settings.export_concurrency,
        )

        async def start_export() -> httpx.Response:
            # Headers only: the export streams until the socket's buffers are full, then waits.
            return await streams.enter_async_context(http.stream("GET", f"{ITEMS}/export.csv"))

        exports = await asyncio.gather(*(start_export() for _ in range(CONCURRENT)))
        free = _sessions(settings) - settings.export_concurrency
        reads = await asyncio.gather(*(http.get(f"{ITEMS}/{item_id}") for _ in range(free)))
        assert [read.status_code for read in reads] == [200] * free
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
