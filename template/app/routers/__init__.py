"""HTTP routers, one module per domain, each with a module-level `router`.

`include_routers` finds them by scanning this package in module-name order, so that adding a
resource (or a router written by hand) edits no shared file. A router is served under the API
prefix (/api/v1) unless its module names another prefix in `ROUTER_PREFIX` (health: the root).
"""

import importlib
import pkgutil

from fastapi import APIRouter, FastAPI


def discover_routers(api_prefix: str) -> list[tuple[str, APIRouter]]:
    """(prefix, router) of every module of this package that has a `router`, by module name."""
    found: list[tuple[str, APIRouter]] = []
    for name in sorted(module.name for module in pkgutil.iter_modules(__path__)):
        module = importlib.import_module(f"{__name__}.{name}")
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            found.append((str(getattr(module, "ROUTER_PREFIX", api_prefix)), router))
    return found


def include_routers(app: FastAPI, *, api_prefix: str) -> None:
    for prefix, router in discover_routers(api_prefix):
        app.include_router(router, prefix=prefix)
