"""Readiness: /ready answers 200 when every dependency answers (liveness, /health, is served by
`app.middleware.liveness` before routing). A read replica is reported (`replica`: "ok", "down
(...)" or "lagging (...)"), never failed on: reads skip it for the primary."""

import asyncio
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse

from app.core.errors import problem
from app.services.health import run_checks

ROUTER_PREFIX = ""  # /ready is served at the root, next to /health, for probes
router = APIRouter(tags=["health"])


@router.get(
    "/ready",
    responses={status.HTTP_503_SERVICE_UNAVAILABLE: {"description": "A dependency is down"}},
)
async def ready(request: Request) -> JSONResponse:
    state = request.app.state
    checking = run_checks(state.readiness_checks, seconds=state.settings.ready_timeout_seconds)
    replica = state.replica  # None: no DATABASE_READ_URL (or SQLite)
    if replica is None:
        checks = await checking
        reported: dict[str, Any] = {}
    else:
        checks, verdict = await asyncio.gather(checking, replica.monitor.check())
        reported = {"replica": verdict}
    failing = sorted(name for name, result in checks.items() if result != "ok")
    if failing:
        return problem(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"not ready: {', '.join(failing)} failed",
            instance=request.url.path,
            checks=checks,
            **reported,
        )
    return JSONResponse({"status": "ok", "checks": checks, **reported})
