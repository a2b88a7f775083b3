"""Hostile input never reaches a handler or the database: unstorable text is a 422 naming the
field, an oversized body a 413 before it is parsed; the rest of it is read and dropped, bounded
(tests/test_served.py shows what that does for a client on a real socket)."""

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response

from app.main import create_app
from app.middleware.input_guard import DRAIN_BYTES

pytestmark = pytest.mark.anyio

ITEMS = "/api/v1/items"
MIB = 1024 * 1024
CHUNK = 64 * 1024


def assert_unstorable(response: Response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    fields = [error["field"] for error in response.json()["errors"]]
    assert field in fields, fields


async def assert_no_items(client: AsyncClient) -> None:
    assert (await client.get(ITEMS)).json()["total"] == 0


async def test_nul_in_a_body_field_is_422_naming_it(client: AsyncClient) -> None:
    assert_unstorable(await client.post(ITEMS, json={"name": "a\x00b"}), "body.name")
    created = await client.post(ITEMS, json={"name": "fine"})
    patched = await client.patch(f"{ITEMS}/{created.json()['id']}", json={"description": "\x00"})
    assert_unstorable(patched, "body.description")
    assert (await client.get(ITEMS)).json()["items"][0]["description"] is None


async def test_a_lone_surrogate_in_a_body_field_is_422(client: AsyncClient) -> None:
    body = b'{"name": "half a pair \\ud800"}'
    response = await client.post(ITEMS, content=body, headers={"Content-Type": "application/json"})
    assert_unstorable(response, "body.name")
    await assert_no_items(client)


@pytest.mark.parametrize("body", [b'{"name": "caf\xe9"}', b'{"name": "\xc3\x28"}'])
async def test_a_body_that_is_not_utf8_is_422_naming_the_body(
    client: AsyncClient, body: bytes
) -> None:
    response = await client.post(ITEMS, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {"field": "body", "message": "the body is not valid UTF-8", "type": "json_invalid"}
    ]
    await assert_no_items(client)


async def test_nul_in_a_query_parameter_is_422_naming_it(client: AsyncClient) -> None:
    assert_unstorable(await client.get(f"{ITEMS}?q=a%00b"), "query.q")
    assert_unstorable(await client.get(f"{ITEMS}/export.csv?sort=name&q=%00"), "query.q")


async def test_nul_in_a_path_parameter_is_422(client: AsyncClient) -> None:
    assert_unstorable(await client.get(f"{ITEMS}/%00"), "path")
    assert_unstorable(await client.delete(f"{ITEMS}/abc%00def"), "path")


async def test_nul_in_a_header_is_422_naming_it(client: AsyncClient) -> None:
    response = await client.get(ITEMS, headers={"X-API-Key": "sk_\x00"})
    assert_unstorable(response, "header.x-api-key")


async def test_text_that_can_be_stored_is_kept_as_sent(client: AsyncClient) -> None:
    name = "tab\there, newline\n, emoji \U0001f600, accents éü"
    created = await client.post(ITEMS, json={"name": "x", "description": name})
    assert created.status_code == 201, created.text
    assert (await client.get(f"{ITEMS}/{created.json()['id']}")).json()["description"] == name


class CountingBody:
    """A streamed request body of `total` bytes that records how much of it was read."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunk = b"[" + b"1," * (CHUNK // 2 - 1) + b"1"
        while self.sent < self.total:
            self.sent += len(chunk)
            yield chunk


def assert_too_large(response: Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["request_id"] == response.headers["X-Request-ID"]


async def test_a_body_declared_too_large_is_413_and_dropped_up_to_a_bound(
    client: AsyncClient,
) -> None:
    size = DRAIN_BYTES + 8 * MIB
    body = CountingBody(size)
    response = await client.post(
        ITEMS,
        content=body,
        headers={"Content-Type": "application/json", "Content-Length": str(size)},
    )
    assert_too_large(response)
    assert body.sent <= DRAIN_BYTES + 2 * CHUNK, f"{body.sent} bytes were read to be dropped"
    await assert_no_items(client)


async def test_a_streamed_body_is_413_once_it_passes_the_limit(client: AsyncClient) -> None:
    body = CountingBody(DRAIN_BYTES + 8 * MIB)  # chunked: no Content-Length to go by
    response = await client.post(ITEMS, content=body, headers={"Content-Type": "application/json"})
    assert_too_large(response)
    read = MIB + DRAIN_BYTES + 3 * CHUNK
    assert body.sent <= read, f"{body.sent} bytes were read; the limit is {MIB}, then dropped"
    await assert_no_items(client)


async def test_a_body_within_the_limit_is_served(client: AsyncClient) -> None:
    description = "d" * 900
    response = await client.post(ITEMS, json={"name": "fits", "description": description})
    assert response.status_code == 201, response.text


async def test_the_limit_comes_from_the_settings(app: FastAPI) -> None:
    small = create_app(app.state.settings.model_copy(update={"max_request_body_bytes": 1024}))
    transport = ASGITransport(app=small)
    async with AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post(ITEMS, json={"name": "x", "description": "d" * 2000})
    await small.state.engine.dispose()
    assert_too_large(response)
