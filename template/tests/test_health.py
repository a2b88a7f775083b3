import asyncio
import time
import uuid

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from app import __version__
from app.core.config import Settings
from app.main import create_app
from tests.database import unreachable_url

pytestmark = pytest.mark.anyio


async def test_health_is_ok_and_carries_a_request_id(client: AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert len(response.headers["X-Request-ID"]) == 32
    assert response.headers["Server-Timing"].startswith("app;dur=")


async def test_health_says_which_version_and_environment(client: AsyncClient) -> None:
    response = await client.get("/health")
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "ok", "version": __version__, "environment": "test"}
    assert int(response.headers["content-length"]) == len(response.content)


async def test_health_answers_head_without_a_body(client: AsyncClient) -> None:
    response = await client.head("/health")
    assert response.status_code == 200
    assert response.content == b""
    assert len(response.headers["X-Request-ID"]) == 32


async def test_health_is_served_under_a_root_path(app: FastAPI) -> None:
    transport = ASGITransport(app=app, root_path="/backend")
    async with AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/backend/health")
        other = await client.get("/backend/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert other.status_code == 404


async def test_valid_request_id_is_kept_and_invalid_one_replaced(client: AsyncClient) -> None:
    incoming = uuid.uuid4().hex
    kept = await client.get("/health", headers={"X-Request-ID": incoming})
    assert kept.headers["X-Request-ID"] == incoming
    forged = await client.get("/health", headers={"X-Request-ID": "<script>alert(1)</script>"})
    assert forged.headers["X-Request-ID"] != "<script>alert(1)</script>"
    assert len(forged.headers["X-Request-ID"]) == 32


async def test_ready_when_the_database_answers(client: AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}


async def test_ready_is_503_naming_the_database_when_it_is_unreachable(
    settings: Settings,
) -> None:
    broken = settings.model_copy(update={"database_url": unreachable_url(settings.database_url)})
    app = create_app(broken)
    transport = ASGITransport(app=app)
    async with AsyncClient(transport=transport, base_url="http://testserver") as client:
        started = time.perf_counter()
        response = await client.get("/ready")
        elapsed = time.perf_counter() - started
    await app.state.engine.dispose()
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["checks"]["database"] in {"error", "timeout"}
    assert "database" in body["detail"]
    assert elapsed < 2.5


async def test_ready_times_out_a_hanging_check(app: FastAPI, client: AsyncClient) -> None:
    async def hangs() -> None:
        await asyncio.sleep(30)

    app.state.readiness_checks = {**app.state.readiness_checks, "slow": hangs}
    app.state.settings = app.state.settings.model_copy(update={"ready_timeout_seconds": 0.2})
    started = time.perf_counter()
    response = await client.get("/ready")
    assert time.perf_counter() - started < 2
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "slow": "timeout"}
