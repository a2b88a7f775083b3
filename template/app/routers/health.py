"""Liveness (/health, no I/O) and readiness (/ready, every dependency answers)."""

from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse

from app.core.errors import problem
from app.services.health import run_checks


async def health(request: Request) -> JSONResponse:
    """Liveness, polled by every load balancer: a plain Starlette route, so it skips FastAPI's
    per-request dependency and validation machinery (and stays out of the OpenAPI document)."""
    settings = request.app.state.settings
    body: dict[str, Any] = {
        "status": "ok",
        "version": request.app.version,
        "environment": settings.environment,
    }
    return JSONResponse(body)


router = APIRouter(tags=["health"])
router.add_route("/health", health, methods=["GET"], include_in_schema=False)


@router.get(
    "/ready",
    responses={status.HTTP_503_SERVICE_UNAVAILABLE: {"description": "A dependency is down"}},
)
async def ready(request: Request) -> JSONResponse:
    checks = await run_checks(
        request.app.state.readiness_checks, seconds=request.app.state.settings.ready_timeout_seconds
    )
    failing = sorted(name for name, result in checks.items() if result != "ok")
    if failing:
        return problem(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"not ready: {', '.join(failing)} failed",
            instance=request.url.path,
            checks=checks,
        )
    return JSONResponse({"status": "ok", "checks": checks})
