"""A new process does at startup what its first request would otherwise do (app.core.warmup)."""

import pytest
from fastapi import FastAPI

from tests.support.database import run_in_new_interpreter

pytestmark = pytest.mark.anyio

FIRST_REQUEST = """
import asyncio, json, sys, uuid

import fastapi.routing
from httpx import ASGITransport, AsyncClient

from app.core.config import Settings
from app.main import create_app

app = create_app(Settings(_env_file=None, environment="test"))  # DATABASE_URL: the test's
built = []
build = fastapi.routing.get_dependant


def counted(*args, **kwargs):
    built.append(kwargs.get("path"))
    return build(*args, **kwargs)


async def first_request():
    async with app.router.lifespan_context(app):
        backend = "anyio._backends._asyncio" in sys.modules
        fastapi.routing.get_dependant = counted
        tokens = getattr(app.state, "access_tokens", None)
        headers = {"Authorization": f"Bearer {tokens.issue(uuid.uuid4())}"} if tokens else {}
        async with AsyncClient(
            transport=ASGITransport(app=app), base_url="http://testserver"
        ) as client:
            await client.get("/health")  # the client's own first use
            modules = set(sys.modules)
            response = await client.get(f"/api/v1/items/{uuid.uuid4()}", headers=headers)
    return {
        "backend": backend,
        "built": built,
        "imported": sorted(set(sys.modules) - modules),
        "status": response.status_code,
    }


print(json.dumps(asyncio.run(first_request())))
"""


async def test_a_started_app_holds_a_connection_on_each_engine(app: FastAPI) -> None:
    """The first request on each engine (reads, writes) reuses one: it does not connect."""
    for engine in (app.state.read_engine, app.state.engine):
        assert engine.pool.checkedin() >= 1, engine


def test_a_new_process_leaves_nothing_to_build_to_its_first_request(database_url: str) -> None:
    """In an interpreter of its own (this one has served many requests): once started, the app
    has imported anyio's asyncio backend, and its first request builds no route (FastAPI builds
    an included router's routes on the first request it matches) and imports no module."""
    first = run_in_new_interpreter(FIRST_REQUEST, database_url)
    assert first["status"] < 500, first
    assert first["backend"] is True
    assert first["built"] == []
    assert first["imported"] == []
