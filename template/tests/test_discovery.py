"""Routers and models are found, not listed: a module added to app/routers or app/models (by hand
or by a resource) is served or migrated with no other file edited."""

import importlib
import pkgutil
import re

from fastapi.routing import APIRoute
from sqlmodel import SQLModel

from app import models, routers
from app.core.config import Settings
from app.main import create_app
from app.models import metadata
from app.routers import discover_routers


def test_every_router_module_is_served_under_its_prefix(settings: Settings) -> None:
    found = discover_routers("/api/v1")
    assert len(found) == len(list(pkgutil.iter_modules(routers.__path__)))  # each has a router
    served = create_app(settings).openapi()["paths"]
    for prefix, router in found:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            assert re.sub(r"\{(\w+):\w+\}", r"{\1}", prefix + route.path) in served
    assert "/ready" in served  # health keeps the root (ROUTER_PREFIX)


def test_every_model_module_registers_its_tables() -> None:
    for module in pkgutil.iter_modules(models.__path__):
        loaded = importlib.import_module(f"app.models.{module.name}")
        for value in vars(loaded).values():
            if (
                isinstance(value, type)
                and issubclass(value, SQLModel)
                and hasattr(value, "__table__")
            ):
                assert value.__tablename__ in metadata.tables
