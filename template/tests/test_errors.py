import asyncio
import uuid

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import make_url, text

from app.core.config import Settings
from app.db.availability import is_unavailable
from app.db.session import SessionGate, create_engine, create_session_factory
from app.dependencies.db import SessionDep
from app.main import create_app
from tests.support.database import driver_threads_end, unreachable_url

pytestmark = pytest.mark.anyio

PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance", "request_id"}


async def test_unknown_route_is_a_problem(client: AsyncClient) -> None:
    response = await client.get("/no/such/route")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body.keys() >= PROBLEM_FIELDS
    assert body["status"] == 404
    assert body["instance"] == "/no/such/route"
    assert body["request_id"] == response.headers["X-Request-ID"]


async def test_wrong_method_is_405_with_allow(client: AsyncClient) -> None:
    response = await client.put("/health")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert "GET" in response.headers["Allow"]


async def test_a_path_that_is_no_id_is_not_taken_for_one(client: AsyncClient) -> None:
    """Ids are UUIDs in the route (`{item_id:uuid}`): `export.csv` is not an item id, so a
    method the export does not serve is a 405 naming the export's methods (not a 422 on the id),
    and a path with no UUID where an id goes is no route (404)."""
    response = await client.patch("/api/v1/items/export.csv", json={"name": "x"})
    assert response.status_code == 405, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["Allow"] == "GET, HEAD"
    for method in ("GET", "PATCH", "DELETE"):
        missing = await client.request(method, "/api/v1/items/not-a-uuid")
        assert missing.status_code == 404, (method, missing.text)


async def test_malformed_json_is_422_not_500(client: AsyncClient) -> None:
    response = await client.post(
        "/api/v1/items", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["type"] == "json_invalid"


async def test_unhandled_error_is_500_problem_without_trace(
    app: FastAPI, client: AsyncClient
) -> None:
    async def explode() -> None:
        raise RuntimeError("secret internal detail")

    app.add_api_route("/boom", explode)
    response = await client.get("/boom", headers={"X-Request-ID": "a" * 32})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["X-Request-ID"] == "a" * 32
    body = response.json()
    assert body["request_id"] == "a" * 32
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text


async def test_log_lines_carry_the_request_id(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(settings)  # logging is configured now, writing to the captured stderr

    async def explode() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/boom", explode)
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://testserver") as client:
        await client.get("/boom", headers={"X-Request-ID": "b" * 32})
    await app.state.engine.dispose()
    logged = capsys.readouterr().err
    assert f"[{'b' * 32}] app.core.errors: unhandled error on GET /boom" in logged


async def test_cors_preflight_allows_configured_origin_only(client: AsyncClient) -> None:
    allowed = await client.options(
        "/api/v1/items",
        headers={"Origin": "http://testserver.local", "Access-Control-Request-Method": "GET"},
    )
    assert allowed.headers["access-control-allow-origin"] == "http://testserver.local"
    denied = await client.options(
        "/api/v1/items",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in denied.headers


async def test_answers_vary_on_origin_and_allow_only_configured_origins(
    client: AsyncClient,
) -> None:
    server = await client.get("/health")  # no Origin: a server, an app, a load balancer
    assert server.headers.get_list("vary") == ["Origin"]
    assert "access-control-allow-origin" not in server.headers
    browser = await client.get("/health", headers={"Origin": "http://testserver.local"})
    assert browser.headers["access-control-allow-origin"] == "http://testserver.local"
    assert browser.headers.get_list("vary") == ["Origin"]
    stranger = await client.get("/health", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in stranger.headers
    assert stranger.headers.get_list("vary") == ["Origin"]


@pytest.mark.parametrize(
    ("accept_encoding", "content_encoding"),
    [("gzip", "gzip"), ("br;q=1.0, gzip;q=0.8", "gzip"), ("identity", None)],
)
async def test_large_responses_are_gzipped_for_clients_that_accept_it(
    client: AsyncClient, accept_encoding: str, content_encoding: str | None
) -> None:
    for index in range(30):
        await client.post("/api/v1/items", json={"name": f"item {index}", "description": "x" * 80})
    response = await client.get(
        "/api/v1/items?limit=30", headers={"Accept-Encoding": accept_encoding}
    )
    assert response.status_code == 200
    assert response.headers.get("content-encoding") == content_encoding
    assert len(response.json()["items"]) == 30


def _caller_headers(app: FastAPI) -> dict[str, str]:
    """Headers that get a request past authentication to its first query, in every variant."""
    tokens = getattr(app.state, "access_tokens", None)
    if tokens is None:
        return {}
    token = tokens.issue(uuid.uuid4())
    return {"Authorization": f"Bearer {token}", "X-Organization-ID": str(uuid.uuid4())}


def assert_unavailable(response: Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["Retry-After"] == "1"
    body = response.json()
    assert "database" in body["detail"]
    assert body["request_id"] == response.headers["X-Request-ID"]


async def test_an_unreachable_database_is_a_503_problem(settings: Settings) -> None:
    """The app starts without its database (the startup's work on it is logged, not raised:
    the first superuser, the warm-up's connections) and answers 503."""
    broken = settings.model_copy(update={"database_url": unreachable_url(settings.database_url)})
    app = create_app(broken)
    transport = ASGITransport(app=app)
    async with (
        driver_threads_end(),
        app.router.lifespan_context(app),
        AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        response = await client.get("/api/v1/items", headers=_caller_headers(app))
    assert_unavailable(response)


async def test_a_database_server_that_never_answers_is_a_503_within_two_seconds(
    settings: Settings,
) -> None:
    """A server that accepts connections and then says nothing (hung, or a half-open proxy):
    the connect timeout turns it into a 503 within the 2 s the API promises, not a hang (on
    MySQL too, whose driver bounds only the TCP connect: the app bounds the whole connect).
    The app starts meanwhile, later by at most the connect timeouts of its startup's work."""
    if make_url(settings.database_url).get_backend_name() == "sqlite":
        pytest.skip("a silent TCP peer only stalls a client/server database's handshake")
    peers: list[asyncio.StreamWriter] = []

    async def say_nothing(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer)

    server = await asyncio.start_server(say_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    silent = make_url(settings.database_url).set(host="127.0.0.1", port=port)
    app = create_app(
        settings.model_copy(update={"database_url": silent.render_as_string(hide_password=False)})
    )
    loop = asyncio.get_running_loop()
    try:
        started = loop.time()
        async with (
            asyncio.timeout(10),  # a hang fails the test, not the suite
            app.router.lifespan_context(app),
        ):
            startup = loop.time() - started
            async with AsyncClient(
                transport=ASGITransport(app=app), base_url="http://testserver"
            ) as client:
                answers: dict[str, tuple[Response, float]] = {}
                for path in ("/api/v1/items", "/ready"):
                    started = loop.time()
                    response = await client.get(path, headers=_caller_headers(app))
                    answers[path] = (response, loop.time() - started)
    finally:
        for writer in peers:
            writer.close()
        server.close()
    assert_unavailable(answers["/api/v1/items"][0])
    assert answers["/ready"][0].status_code == 503
    for path, (_, elapsed) in answers.items():
        assert elapsed < 2.0, f"the 503 of {path} took {elapsed:.2f} s"
    # The first superuser's connect (with jwt), then the warm-up's (within READY_TIMEOUT_SECONDS).
    bound = settings.db_connect_timeout + settings.ready_timeout_seconds
    assert startup < bound + 0.5, f"the start took {startup:.2f} s"


async def test_a_saturated_pool_is_a_503_problem(app: FastAPI, client: AsyncClient) -> None:
    app.state.session_gate = SessionGate(1, timeout=0.05)
    async with app.state.session_gate:  # every session is taken
        response = await client.get("/api/v1/items")
    assert_unavailable(response)
    assert (await client.get("/api/v1/items")).status_code == 200


async def test_a_500_carries_cors_headers_for_an_allowed_origin(
    app: FastAPI, client: AsyncClient
) -> None:
    async def explode() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/boom", explode)
    response = await client.get("/boom", headers={"Origin": "http://testserver.local"})
    assert response.status_code == 500
    assert response.headers["access-control-allow-origin"] == "http://testserver.local"
    assert response.headers["access-control-expose-headers"] == "X-Request-ID"
    assert response.json()["request_id"] == response.headers["X-Request-ID"]


async def test_a_bug_in_a_query_is_still_a_500(app: FastAPI, client: AsyncClient) -> None:
    async def broken_query(session: SessionDep) -> None:
        await (await session.connection()).execute(text("SELECT no_such_column FROM no_such_table"))

    app.add_api_route("/broken", broken_query)
    response = await client.get("/broken")
    assert response.status_code == 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "no_such" not in response.text


KILL_OWN_CONNECTION = {
    "postgresql": "SELECT pg_terminate_backend(pg_backend_pid())",
    "mysql": "KILL CONNECTION_ID()",
}


async def test_a_connection_dropped_mid_request_is_a_503_problem(
    app: FastAPI, client: AsyncClient
) -> None:
    """The server ends the request's own connection while it queries (as a restart would)."""
    dialect = app.state.engine.dialect.name
    if dialect not in KILL_OWN_CONNECTION:
        pytest.skip("SQLite has no server connection to lose")

    async def dropped(session: SessionDep) -> None:
        connection = await session.connection()
        await connection.execute(text(KILL_OWN_CONNECTION[dialect]))
        await connection.execute(text("SELECT 1"))

    app.add_api_route("/dropped", dropped)
    assert_unavailable(await client.get("/dropped"))
    assert (await client.get("/api/v1/items")).status_code == 200  # the pool recovers


async def test_an_export_the_database_cannot_serve_is_a_503_not_a_200_cut_short(
    app: FastAPI, client: AsyncClient, settings: Settings
) -> None:
    """The export's query runs before its answer starts. With `cache` the caller's principal is
    cached and the export's query is its request's first: a connection that failed to open went
    wrong after the 200 had gone out, the body broke off, and the export's slot was free while
    its client still held a 200 (under load a fifth export of EXPORT_CONCURRENCY=4 got one)."""
    assert (await client.get("/api/v1/items")).status_code == 200  # the caller, known (cached)
    broken = settings.model_copy(update={"database_url": unreachable_url(settings.database_url)})
    engine = create_engine(broken)
    working = app.state.session_factory
    app.state.session_factory = create_session_factory(engine)
    try:
        async with driver_threads_end():
            response = await client.get("/api/v1/items/export.csv")
    finally:
        app.state.session_factory = working
        await engine.dispose()
    assert_unavailable(response)
    assert (await client.get("/api/v1/items/export.csv")).status_code == 200


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (ConnectionRefusedError(111, "Connection refused"), True),
        (TimeoutError(), True),
        (ValueError("a bug"), False),
        (KeyError("a bug"), False),
    ],
)
def test_only_outages_count_as_unavailable(error: Exception, unavailable: bool) -> None:
    assert is_unavailable(error) is unavailable
