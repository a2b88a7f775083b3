"""Readiness: /ready answers 200 when every dependency answers (liveness, /health, is served by
`app.middleware.liveness` before routing)."""

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
